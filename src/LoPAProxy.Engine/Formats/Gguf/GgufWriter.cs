using System.Runtime.InteropServices;
using System.Text;

namespace LoPAProxy.Engine.Formats.Gguf;

/// <summary>
/// Writes a GGUF v3 file: metadata, a tensor directory, then tensor data, each aligned to 32 bytes. Only what the
/// llama2.c converter and the benchmarks need (F32 tensors from arrays, F32/F16 matrices written a row at a time;
/// string, integer, float, bool and array values). No .NET library writes GGUF; llama.cpp's own writer is Python
/// (gguf-py).
/// </summary>
public sealed class GgufWriter
{
    private const int Alignment = 32;
    private readonly List<(string Key, GgufValueType Type, Action<BinaryWriter> Write)> _metadata = new();
    private readonly List<PendingTensor> _tensors = new();

    private sealed record PendingTensor(string Name, long[] Shape, GgmlType Type, long Bytes, Action<Stream> WriteData);

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
        _tensors.Add(new PendingTensor(name, shape, GgmlType.F32, 4L * data.Length,
            s => s.Write(MemoryMarshal.AsBytes(data.AsSpan()))));
        return this;
    }

    /// <summary>A matrix [rows, cols] (ggml shape [cols, rows]) in F32 or F16, its rows made one at a time by
    /// <paramref name="fillRow"/> (row index, destination [cols]) while the file is written: a table larger than
    /// the heap should hold, such as a 128k-token vocabulary at d = 4,096, never exists whole in memory.</summary>
    public GgufWriter AddMatrix(string name, GgmlType type, int rows, int cols, Action<int, Span<float>> fillRow)
    {
        if (type is not (GgmlType.F32 or GgmlType.F16))
        {
            throw new ArgumentException($"tensor '{name}': rows can be written as F32 or F16, not {type}");
        }
        int elementBytes = type == GgmlType.F32 ? 4 : 2;
        _tensors.Add(new PendingTensor(name, new long[] { cols, rows }, type, (long)rows * cols * elementBytes,
            s => WriteRows(s, type, rows, cols, fillRow)));
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
            foreach (PendingTensor tensor in _tensors)
            {
                WriteString(w, tensor.Name);
                w.Write((uint)tensor.Shape.Length);
                foreach (long n in tensor.Shape) w.Write((ulong)n);
                w.Write((uint)tensor.Type);
                w.Write((ulong)offset);
                offset = Align(offset + tensor.Bytes);
            }
            Pad(w);
            foreach (PendingTensor tensor in _tensors)
            {
                w.Flush();
                tensor.WriteData(stream);
                Pad(w);
            }
        }
        File.Move(temporary, path, overwrite: true);
    }

    private static void WriteRows(Stream stream, GgmlType type, int rows, int cols, Action<int, Span<float>> fillRow)
    {
        var row = new float[cols];
        var half = new Half[cols];
        for (int r = 0; r < rows; r++)
        {
            fillRow(r, row);
            if (type == GgmlType.F32)
            {
                stream.Write(MemoryMarshal.AsBytes(row.AsSpan()));
                continue;
            }
            System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(row, half);
            stream.Write(MemoryMarshal.AsBytes(half.AsSpan()));
        }
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
