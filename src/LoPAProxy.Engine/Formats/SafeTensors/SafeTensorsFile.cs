using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text.Json;
using LoPAProxy.Engine.Tensors;

namespace LoPAProxy.Engine.Formats.SafeTensors;

/// <summary>One tensor's entry in a safetensors header; <see cref="Offset"/> is relative to the data section.</summary>
public sealed record SafeTensorInfo(string Name, DType DType, long[] Shape, long Offset, long Length)
{
    public int[] IntShape => Shape.Select(d => (int)d).ToArray();
}

/// <summary>
/// Hugging Face's safetensors format: u64 header length, a JSON header, then the raw little-endian data.
/// Opened from a path it is memory-mapped (tensors are read on demand, nothing is loaded up front);
/// opened from bytes it reads from the array. The header is validated completely before any tensor
/// is touched: header ≤ 100 MB, known dtypes, shape × dtype size = byte span, offsets inside the data,
/// no overlaps and no holes (as the reference implementation requires).
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    public const long MaxHeaderBytes = 100_000_000;

    private static readonly Dictionary<string, DType> DTypes = new(StringComparer.Ordinal)
    {
        ["F64"] = DType.F64, ["F32"] = DType.F32, ["F16"] = DType.F16, ["BF16"] = DType.BF16,
        ["I64"] = DType.I64, ["I32"] = DType.I32, ["I16"] = DType.I16, ["I8"] = DType.I8, ["U8"] = DType.U8, ["BOOL"] = DType.Bool,
    };

    internal static string DTypeName(DType t) => DTypes.First(kv => kv.Value == t).Key;

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly GCHandle _pin;
    private readonly byte* _base;
    private readonly long _dataStart;
    private readonly Dictionary<string, SafeTensorInfo> _tensors;

    public string FileName { get; }
    public long Length { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>Where tensor data begins in the file (a tensor's bytes are at this plus its offset).</summary>
    public long DataStart => _dataStart;
    /// <summary>Tensors in data order.</summary>
    public IReadOnlyList<SafeTensorInfo> Tensors { get; }

    private SafeTensorsFile(string name, byte* basePtr, long length, MemoryMappedFile? map, MemoryMappedViewAccessor? view, GCHandle pin)
    {
        FileName = name; _base = basePtr; Length = length; _map = map; _view = view; _pin = pin;
        try
        {
            (_dataStart, var tensors, var metadata) = ParseHeader(new ReadOnlySpan<byte>(basePtr, (int)Math.Min(length, 8 + MaxHeaderBytes)), length, name);
            Tensors = tensors;
            Metadata = metadata;
            _tensors = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Memory-maps the file at <paramref name="path"/>.</summary>
    public static SafeTensorsFile Open(string path)
    {
        long length = new FileInfo(path).Length;
        if (length < 8) throw new TensorFileException(path, $"{length} bytes is shorter than the 8-byte header length");
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        var view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        return new SafeTensorsFile(path, p + view.PointerOffset, length, map, view, default);
    }

    /// <summary>Reads from an in-memory copy (an upload, a test); the array is pinned until disposal.</summary>
    public static SafeTensorsFile FromBytes(byte[] bytes, string name)
    {
        if (bytes.Length < 8) throw new TensorFileException(name, $"{bytes.Length} bytes is shorter than the 8-byte header length");
        var pin = GCHandle.Alloc(bytes, GCHandleType.Pinned);
        return new SafeTensorsFile(name, (byte*)pin.AddrOfPinnedObject(), bytes.Length, null, null, pin);
    }

    public bool Contains(string name) => _tensors.ContainsKey(name);

    public SafeTensorInfo Info(string name) =>
        _tensors.TryGetValue(name, out var info) ? info : throw new TensorFileException(FileName, $"no tensor named '{name}'");

    /// <summary>The raw little-endian bytes of a tensor (a view into the map; valid until disposal).</summary>
    public ReadOnlySpan<byte> Bytes(string name)
    {
        SafeTensorInfo info = Info(name);
        if (info.Length > int.MaxValue) throw new TensorFileException(FileName, $"tensor '{name}' is larger than 2 GiB");
        return new ReadOnlySpan<byte>(_base + _dataStart + info.Offset, (int)info.Length);
    }

    /// <summary>A float tensor (F32/F16/BF16/F64 or integer types) converted to float32.</summary>
    public Tensor ReadFloat32(string name)
    {
        SafeTensorInfo info = Info(name);
        long count = info.Length / info.DType.Size();
        if (count > Array.MaxLength) throw new TensorFileException(FileName, $"tensor '{name}' has too many elements");
        var values = new float[count];
        FloatConvert.Decode(Bytes(name), info.DType, values);
        return Tensor.FromArray(values, info.IntShape);
    }

    private static (long DataStart, List<SafeTensorInfo> Tensors, Dictionary<string, string> Metadata) ParseHeader(ReadOnlySpan<byte> head, long length, string file)
    {
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(head);
        if (n > MaxHeaderBytes)
        {
            throw new TensorFileException(file, n >= 1UL << 40 // text, a zip, a pickle: no header is a terabyte
                ? "not a safetensors file (it does not start with a header length and a JSON header)"
                : $"header length {n} exceeds the {MaxHeaderBytes}-byte limit");
        }

        if (8 + (long)n > length) throw new TensorFileException(file, $"header length {n} runs past the end of the file ({length} bytes)");
        long dataStart = 8 + (long)n, dataLength = length - dataStart;
        ReadOnlySpan<byte> json = head.Slice(8, (int)n);
        if (!System.Text.Unicode.Utf8.IsValid(json)) throw new TensorFileException(file, "header is not valid UTF-8");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json.ToArray(), StrictJson.Options(8)); }
        catch (JsonException e)
        {
            throw new TensorFileException(file, $"header is not valid JSON: {StrictJson.Describe(e, json)}");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new TensorFileException(file, "header is not a JSON object");
            var tensors = new List<SafeTensorInfo>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (JsonProperty prop in doc.RootElement.EnumerateObject()) // names are unique: StrictJson
            {
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object) throw new TensorFileException(file, "__metadata__ is not an object");
                    foreach (JsonProperty m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw new TensorFileException(file, $"__metadata__ value '{m.Name}' is not a string");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                tensors.Add(ParseEntry(prop, dataLength, file));
            }
            tensors.Sort((a, b) => a.Offset != b.Offset ? a.Offset.CompareTo(b.Offset) : a.Length.CompareTo(b.Length));
            long expected = 0;
            foreach (SafeTensorInfo t in tensors)
            {
                if (t.Offset < expected) throw new TensorFileException(file, $"tensor '{t.Name}' overlaps the previous tensor (offset {t.Offset} < {expected})");
                if (t.Offset > expected) throw new TensorFileException(file, $"hole in the data before tensor '{t.Name}' (offset {t.Offset}, expected {expected})");
                expected = t.Offset + t.Length;
            }
            if (expected != dataLength) throw new TensorFileException(file, $"data section has {dataLength} bytes but the tensors cover {expected}");
            return (dataStart, tensors, metadata);
        }
    }

    private static SafeTensorInfo ParseEntry(JsonProperty prop, long dataLength, string file)
    {
        string name = prop.Name;
        if (prop.Value.ValueKind != JsonValueKind.Object) throw new TensorFileException(file, $"entry '{name}' is not an object");
        string? dtypeName = null; long[]? shape = null; long[]? offsets = null;
        foreach (JsonProperty f in prop.Value.EnumerateObject())
        {
            switch (f.Name)
            {
                case "dtype":
                    dtypeName = f.Value.ValueKind == JsonValueKind.String ? f.Value.GetString() : throw new TensorFileException(file, $"'{name}': dtype is not a string");
                    break;
                case "shape": shape = Integers(f.Value, file, name, "shape", 64); break;
                case "data_offsets": offsets = Integers(f.Value, file, name, "data_offsets", 2); break;
                default: throw new TensorFileException(file, $"'{name}': unknown field '{f.Name}'");
            }
        }
        if (dtypeName == null || shape == null || offsets == null) throw new TensorFileException(file, $"'{name}' lacks dtype, shape or data_offsets");
        if (!DTypes.TryGetValue(dtypeName, out DType dtype)) throw new TensorFileException(file, $"'{name}': unknown or unsupported dtype '{dtypeName}'");
        if (offsets.Length != 2) throw new TensorFileException(file, $"'{name}': data_offsets must be [begin, end]");
        long begin = offsets[0], end = offsets[1];
        if (begin > end || end > dataLength) throw new TensorFileException(file, $"'{name}': data_offsets [{begin}, {end}] outside the data section of {dataLength} bytes");
        long count = ShapeMath.CheckedCount(shape, long.MaxValue / 8);
        if (count < 0) throw new TensorFileException(file, $"'{name}': shape [{string.Join(", ", shape)}] overflows");
        if (count * dtype.Size() != end - begin)
            throw new TensorFileException(file, $"'{name}': shape [{string.Join(", ", shape)}] × {dtypeName} is {count * dtype.Size()} bytes but data_offsets span {end - begin}");
        if (shape.Any(d => d > int.MaxValue)) throw new TensorFileException(file, $"'{name}': dimension too large");
        return new SafeTensorInfo(name, dtype, shape, begin, end - begin);
    }

    private static long[] Integers(JsonElement e, string file, string name, string what, int maxCount)
    {
        if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() > maxCount) throw new TensorFileException(file, $"'{name}': {what} is not an array of at most {maxCount} integers");
        var result = new long[e.GetArrayLength()];
        int i = 0;
        foreach (JsonElement v in e.EnumerateArray())
            result[i++] = v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long x) && x >= 0 ? x : throw new TensorFileException(file, $"'{name}': {what} holds something other than a non-negative integer");
        return result;
    }

    public void Dispose()
    {
        if (_view != null) { _view.SafeMemoryMappedViewHandle.ReleasePointer(); _view.Dispose(); }
        _map?.Dispose();
        if (_pin.IsAllocated) _pin.Free();
    }
}
