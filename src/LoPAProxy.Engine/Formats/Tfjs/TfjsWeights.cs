using System.Text.Json;
using LoPAProxy.Engine.Tensors;

namespace LoPAProxy.Engine.Formats.Tfjs;

/// <summary>
/// The weights of a TF.js graph model: model.json's weightsManifest (groups of shard files holding the
/// weights back to back, in manifest order). float32 and int32 only; quantised weights are refused.
/// Sizes are checked against the shard files before anything is read.
/// </summary>
public sealed class TfjsWeights
{
    private readonly Dictionary<string, (DType Type, int[] Shape, float[]? Floats, int[]? Ints)> _weights = new(StringComparer.Ordinal);

    public IEnumerable<string> Names => _weights.Keys;

    public static TfjsWeights Load(string directory)
    {
        string modelPath = Path.Combine(directory, "model.json");
        var result = new TfjsWeights();
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(modelPath)); }
        catch (JsonException e) { throw new TensorFileException(modelPath, $"not valid JSON: {e.Message}"); }
        using (doc)
        {
            if (!doc.RootElement.TryGetProperty("weightsManifest", out JsonElement manifest) || manifest.ValueKind != JsonValueKind.Array)
                throw new TensorFileException(modelPath, "no weightsManifest");
            foreach (JsonElement group in manifest.EnumerateArray())
            {
                string[] paths = group.GetProperty("paths").EnumerateArray().Select(p => p.GetString()!).ToArray();
                foreach (string p in paths)
                    if (p.Contains("..") || Path.IsPathRooted(p)) throw new TensorFileException(modelPath, $"shard path '{p}' leaves the model directory");
                long available = paths.Sum(p => new FileInfo(Path.Combine(directory, p)).Length);
                var specs = new List<(string Name, DType Type, int[] Shape, long Count)>();
                long needed = 0;
                foreach (JsonElement w in group.GetProperty("weights").EnumerateArray())
                {
                    string name = w.GetProperty("name").GetString()!;
                    if (w.TryGetProperty("quantization", out _)) throw new TensorFileException(modelPath, $"weight '{name}' is quantised; only float32/int32 weights are supported");
                    DType type = w.GetProperty("dtype").GetString() switch
                    {
                        "float32" => DType.F32,
                        "int32" => DType.I32,
                        var t => throw new TensorFileException(modelPath, $"weight '{name}' has unsupported dtype '{t}'"),
                    };
                    int[] shape = w.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray();
                    long count = ShapeMath.CheckedCount(shape.Select(d => (long)d).ToArray(), int.MaxValue);
                    if (count < 0) throw new TensorFileException(modelPath, $"weight '{name}' has an invalid shape");
                    specs.Add((name, type, shape, count));
                    needed += count * 4;
                }
                if (needed != available) throw new TensorFileException(modelPath, $"the manifest needs {needed} bytes but its shards hold {available}");
                using var stream = new ConcatenatedFiles(paths.Select(p => Path.Combine(directory, p)).ToArray());
                foreach (var (name, type, shape, count) in specs)
                {
                    var bytes = new byte[count * 4];
                    stream.ReadExactly(bytes);
                    if (type == DType.F32)
                    {
                        var f = new float[count];
                        FloatConvert.Decode(bytes, DType.F32, f);
                        result._weights[name] = (type, shape, f, null);
                    }
                    else
                    {
                        var ints = new int[count];
                        Buffer.BlockCopy(bytes, 0, ints, 0, bytes.Length);
                        result._weights[name] = (type, shape, null, ints);
                    }
                }
            }
        }
        return result;
    }

    /// <summary>The float weight whose name ends with <paramref name="suffix"/> (exactly one must), with its shape checked.</summary>
    public float[] Float(string suffix, params int[] shape)
    {
        var matches = _weights.Where(kv => kv.Key.EndsWith(suffix, StringComparison.Ordinal)).ToList();
        if (matches.Count != 1) throw new TensorFileException("model.json", $"{matches.Count} weights end with '{suffix}' (expected one)");
        var (type, actual, floats, _) = matches[0].Value;
        if (type != DType.F32 || floats is null) throw new TensorFileException("model.json", $"weight '{matches[0].Key}' is not float32");
        if (!actual.SequenceEqual(shape)) throw new TensorFileException("model.json", $"weight '{matches[0].Key}' has shape [{string.Join(", ", actual)}], expected [{string.Join(", ", shape)}]");
        return floats;
    }

    /// <summary>Reads several files as one stream (TF.js shards).</summary>
    private sealed class ConcatenatedFiles(string[] paths) : Stream
    {
        private int _index = -1;
        private FileStream? _current;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override int Read(byte[] buffer, int offset, int count)
        {
            while (true)
            {
                if (_current != null)
                {
                    int n = _current.Read(buffer, offset, count);
                    if (n > 0) return n;
                    _current.Dispose();
                    _current = null;
                }
                if (++_index >= paths.Length) return 0;
                _current = File.OpenRead(paths[_index]);
            }
        }

        protected override void Dispose(bool disposing)
        {
            _current?.Dispose();
            base.Dispose(disposing);
        }
    }
}
