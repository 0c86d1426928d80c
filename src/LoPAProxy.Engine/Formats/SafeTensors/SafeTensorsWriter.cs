using System.Buffers.Binary;
using System.Text.Json;
using LoPAProxy.Engine.Tensors;

namespace LoPAProxy.Engine.Formats.SafeTensors;

/// <summary>
/// Builds a safetensors file with deterministic bytes: tensors ordered by name (ordinal), compact JSON
/// with __metadata__ first and its keys sorted, header padded with spaces to a multiple of 8.
/// </summary>
public sealed class SafeTensorsWriter
{
    private readonly SortedDictionary<string, (DType DType, long[] Shape, byte[] Data)> _tensors = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, string> _metadata = new(StringComparer.Ordinal);

    public SafeTensorsWriter Metadata(string key, string value) { _metadata[key] = value; return this; }

    /// <summary>Adds a float tensor stored as F32, F16 or BF16.</summary>
    public SafeTensorsWriter Add(string name, Tensor tensor, DType dtype = DType.F32)
    {
        Tensor t = tensor.Contiguous();
        var data = new byte[t.Count * dtype.Size()];
        FloatConvert.Encode(t.Span, dtype, data);
        return AddRaw(name, dtype, t.Shape.ToArray().Select(d => (long)d).ToArray(), data);
    }

    /// <summary>Adds raw little-endian element bytes of any supported dtype (integers included).</summary>
    public SafeTensorsWriter AddRaw(string name, DType dtype, long[] shape, byte[] data)
    {
        if (name == "__metadata__" || name.Length == 0) throw new ArgumentException($"invalid tensor name '{name}'");
        long count = ShapeMath.CheckedCount(shape, long.MaxValue / 8);
        if (count < 0 || count * dtype.Size() != data.Length) throw new ArgumentException($"'{name}': {data.Length} bytes do not match shape [{string.Join(", ", shape)}] of {dtype}");
        if (!_tensors.TryAdd(name, (dtype, (long[])shape.Clone(), data))) throw new ArgumentException($"duplicate tensor name '{name}'");
        return this;
    }

    public byte[] ToArray()
    {
        var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            if (_metadata.Count > 0)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in _metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, (dtype, shape, data)) in _tensors)
            {
                json.WriteStartObject(name);
                json.WriteString("dtype", SafeTensorsFile.DTypeName(dtype));
                json.WriteStartArray("shape");
                foreach (long d in shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + data.Length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += data.Length;
            }
            json.WriteEndObject();
        }
        int pad = (int)((8 - header.Length % 8) % 8);
        for (int i = 0; i < pad; i++) header.WriteByte((byte)' ');
        var file = new MemoryStream();
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        file.Write(len);
        header.Position = 0;
        header.CopyTo(file);
        foreach (var (_, (_, _, data)) in _tensors) file.Write(data);
        return file.ToArray();
    }

    public void Save(string path) => File.WriteAllBytes(path, ToArray());
}
