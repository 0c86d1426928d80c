using System.Runtime.InteropServices;
using System.Text;

namespace LoPAProxy.Engine.Formats.Gguf;

/// <summary>
/// Writes a GGUF v3 file: metadata, a tensor directory, then float32 tensor data, each aligned to 32 bytes. Only
/// what the llama2.c converter needs (F32 tensors; string, integer, float, bool and array values). No .NET library
/// writes GGUF; llama.cpp's own writer is Python (gguf-py).
/// </summary>
public sealed class GgufWriter
{
    private const int Alignment = 32;
    private readonly List<(string Key, GgufValueType Type, Action<BinaryWriter> Write)> _metadata = new();
    private readonly List<(string Name, long[] Shape, float[] Data)> _tensors = new();

    public GgufWriter Add(string key, string value) => Add(key, GgufValueType.String, w => WriteString(w, value));

    public GgufWriter Add(string key, uint value) => Add(key, GgufValueType.UInt32, w => w.Write(value));

    public GgufWriter Add(string key, int value) => Add(key, GgufValueType.Int32, w => w.Write(value));

    public GgufWriter Add(string key, float value) => Add(key, GgufValueType.Float32, w => w.Write(value));

    public GgufWriter Add(string key, bool value) => Add(key, GgufValueType.Bool, w => w.Write(value));

    public GgufWriter Add(string key, IReadOnlyList<string> values) =>
        AddArray(key, GgufValueType.String, values.Count, (w, i) => WriteString(w, values[i]));

    public GgufWriter Add(string key, IReadOnlyList<float> values) =>
        AddArray(key, GgufValueType.Float32, values.Count, (w, i) => w.Write(values[i]));

    public GgufWriter Add(string key, IReadOnlyList<int> values) =>
        AddArray(key, GgufValueType.Int32, values.Count, (w, i) => w.Write(values[i]));

    /// <summary>A float32 tensor; <paramref name="shape"/> in ggml order (ne0 first: for a PyTorch [out, in] matrix,
    /// [in, out]).</summary>
    public GgufWriter AddTensor(string name, float[] data, params long[] shape)
    {
        if (shape.Aggregate(1L, (a, b) => a * b) != data.Length)
        {
            string dims = string.Join(", ", shape);
            throw new ArgumentException($"tensor '{name}': shape [{dims}] does not hold {data.Length}");
        }
        _tensors.Add((name, shape, data));
        return this;
    }

    public void Write(string path)
    {
        string temporary = path + ".partial";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        using (var w = new BinaryWriter(stream, Encoding.UTF8))
        {
            w.Write(GgufFile.Magic);
            w.Write(3u);
            w.Write((ulong)_tensors.Count);
            w.Write((ulong)_metadata.Count);
            foreach (var (key, type, write) in _metadata)
            {
                WriteString(w, key);
                w.Write((uint)type);
                write(w);
            }
            long offset = 0;
            foreach (var (name, shape, data) in _tensors)
            {
                WriteString(w, name);
                w.Write((uint)shape.Length);
                foreach (long n in shape) w.Write((ulong)n);
                w.Write((uint)GgmlType.F32);
                w.Write((ulong)offset);
                offset = Align(offset + 4L * data.Length);
            }
            Pad(w);
            foreach (var (_, _, data) in _tensors)
            {
                w.Write(MemoryMarshal.AsBytes(data.AsSpan()));
                Pad(w);
            }
        }
        File.Move(temporary, path, overwrite: true);
    }

    private GgufWriter Add(string key, GgufValueType type, Action<BinaryWriter> write)
    {
        if (_metadata.Any(m => m.Key == key)) throw new ArgumentException($"metadata key '{key}' added twice");
        _metadata.Add((key, type, write));
        return this;
    }

    private GgufWriter AddArray(string key, GgufValueType elementType, int count, Action<BinaryWriter, int> write) =>
        Add(key, GgufValueType.Array, w =>
        {
            w.Write((uint)elementType);
            w.Write((ulong)count);
            for (int i = 0; i < count; i++) write(w, i);
        });

    private static void WriteString(BinaryWriter w, string value)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(value);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static long Align(long n) => (n + Alignment - 1) / Alignment * Alignment;

    private static void Pad(BinaryWriter w)
    {
        long position = w.BaseStream.Position;
        for (long i = position; i < Align(position); i++) w.Write((byte)0);
    }
}
