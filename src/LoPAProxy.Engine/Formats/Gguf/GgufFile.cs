using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace LoPAProxy.Engine.Formats.Gguf;

/// <summary>GGUF metadata value types (gguf.h's gguf_type).</summary>
public enum GgufValueType : uint
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7, String = 8,
    Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
}

/// <summary>ggml tensor types by ggml.h's numbering (the ones whose block size this project knows).</summary>
public enum GgmlType : uint
{
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
}

/// <summary>One tensor's header: name, shape in ggml order (ne0 = the contiguous dimension), type, data
/// offset.</summary>
public sealed record GgufTensorInfo(string Name, long[] Shape, GgmlType Type, long Offset)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// A GGUF v2/v3 file's metadata and tensor directory (the format llama.cpp loads), read from untrusted bytes: every
/// count and length is checked against what is left of the file before anything is allocated, so a hostile header
/// fails with <see cref="TensorFileException"/> instead of allocating. Tensor data stays on disk until asked for.
/// Kept because the proxy must read a model's tokenizer and token-embedding table without loading llama.cpp
/// (native runtimes live only in the model server), and no .NET library reads GGUF.
/// </summary>
public sealed class GgufFile
{
    public const uint Magic = 0x46554747; // "GGUF" little-endian
    private const int MaxStringBytes = 1 << 24, MaxTensors = 1 << 16, MaxKeys = 1 << 16, MaxDims = 4;

    private readonly Func<Stream> _open;

    /// <summary>The file's path, or the name given to bytes read from memory.</summary>
    public string Path { get; }
    public uint Version { get; }
    public IReadOnlyDictionary<string, object> Metadata { get; }
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }
    public long DataStart { get; }

    private GgufFile(string path, Func<Stream> open, uint version, Dictionary<string, object> metadata,
        List<GgufTensorInfo> tensors, long dataStart)
    {
        Path = path;
        _open = open;
        Version = version;
        Metadata = metadata;
        Tensors = tensors;
        DataStart = dataStart;
    }

    public static GgufFile Open(string path) =>
        Read(path, () => new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16));

    /// <summary>A GGUF held in memory (tests, fuzzing); <paramref name="name"/> names it in errors.</summary>
    public static GgufFile FromBytes(byte[] bytes, string name) => Read(name, () => new MemoryStream(bytes, false));

    private static GgufFile Read(string path, Func<Stream> open)
    {
        using Stream stream = open();
        var r = new Cursor(stream, path);
        if (r.U32("magic") != Magic) throw r.Error("not a GGUF file (magic is not 'GGUF')");
        uint version = r.U32("version");
        if (version is not (2 or 3)) throw r.Error($"GGUF version {version} is not supported (2 or 3)");
        long tensorCount = r.Count("tensor count", MaxTensors);
        long keyCount = r.Count("metadata count", MaxKeys);
        var metadata = new Dictionary<string, object>(StringComparer.Ordinal);
        for (long i = 0; i < keyCount; i++)
        {
            string key = r.String("metadata key");
            var type = (GgufValueType)r.U32($"type of '{key}'");
            object value = r.Value(type, key, nested: false);
            if (!metadata.TryAdd(key, value)) throw r.Error($"metadata key '{key}' repeats");
        }
        var tensors = new List<GgufTensorInfo>((int)tensorCount);
        for (long i = 0; i < tensorCount; i++) tensors.Add(r.TensorInfo());
        long alignment = metadata.TryGetValue("general.alignment", out object? a) ? Convert.ToInt64(a,
            CultureInfo.InvariantCulture) : 32;
        if (alignment <= 0 || alignment > 1 << 16 || (alignment & (alignment - 1)) != 0)
            throw r.Error($"general.alignment {alignment} is not a power of two up to 65536");
        long dataStart = (stream.Position + alignment - 1) / alignment * alignment;
        var file = new GgufFile(path, open, version, metadata, tensors, dataStart);
        foreach (GgufTensorInfo t in tensors) file.CheckBounds(t, stream.Length, alignment);
        return file;
    }

    /// <summary>Whether the file starts with GGUF's magic (what a model path is, before parsing it).</summary>
    public static bool HasMagic(string path)
    {
        using var stream = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[4];
        return stream.Read(magic) == 4 && BinaryPrimitives.ReadUInt32LittleEndian(magic) == Magic;
    }

    public GgufTensorInfo? Find(string name) => Tensors.FirstOrDefault(t => t.Name == name);

    public string? GetString(string key) => Metadata.GetValueOrDefault(key) as string;

    public long? GetInteger(string key) => Metadata.GetValueOrDefault(key) switch
    {
        byte or sbyte or ushort or short or uint or int or long => Convert.ToInt64(Metadata[key],
            CultureInfo.InvariantCulture),
        ulong u when u <= long.MaxValue => (long)u,
        _ => null,
    };

    public double? GetNumber(string key) => Metadata.GetValueOrDefault(key) switch
    {
        float f => f,
        double d => d,
        _ => GetInteger(key),
    };

    public bool? GetBool(string key) => Metadata.GetValueOrDefault(key) as bool?;

    public T[]? GetArray<T>(string key) => Metadata.GetValueOrDefault(key) as T[];

    /// <summary>A tensor's values as float32 [Shape reversed], for F32, F16, BF16 and Q8_0 data.</summary>
    public float[] ReadFloat32(string name)
    {
        GgufTensorInfo info = Find(name) ?? throw new TensorFileException(Path, $"no tensor '{name}'");
        if (info.Elements > int.MaxValue) throw new TensorFileException(Path, $"'{name}' has too many elements");
        var values = new float[info.Elements];
        long size = GgmlTypes.ByteSize(info.Type, info.Elements)
            ?? throw new TensorFileException(Path,
                $"'{name}' has ggml type {(uint)info.Type}, which this reader cannot decode");
        byte[] raw = new byte[size];
        using (Stream stream = _open())
        {
            stream.Position = DataStart + info.Offset;
            stream.ReadExactly(raw);
        }
        GgmlTypes.Dequantize(info.Type, raw, values, Path, name);
        return values;
    }

    private void CheckBounds(GgufTensorInfo t, long fileLength, long alignment)
    {
        if (t.Offset % alignment != 0) throw new TensorFileException(Path, $"tensor '{t.Name}' is not aligned");
        if (GgmlTypes.ByteSize(t.Type, t.Elements) is not { } bytes) return; // a type we never read
        if (DataStart + t.Offset + bytes > fileLength)
            throw new TensorFileException(Path, $"tensor '{t.Name}' ends past the end of the file (truncated?)");
    }

    /// <summary>Reads little-endian values from the stream, each checked against the bytes left.</summary>
    private sealed class Cursor(Stream stream, string file)
    {
        private readonly byte[] _buffer = new byte[8];

        private long Left => stream.Length - stream.Position;

        public TensorFileException Error(string problem) => new(file, problem);

        private ReadOnlySpan<byte> Take(int count, string what)
        {
            if (count > Left) throw Error($"truncated: {what} needs {count} bytes at offset {stream.Position}");
            stream.ReadExactly(_buffer, 0, count);
            return _buffer.AsSpan(0, count);
        }

        public uint U32(string what) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what));

        public ulong U64(string what) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what));

        public long Count(string what, long max)
        {
            ulong n = U64(what);
            if (n > (ulong)max) throw Error($"{what} {n} is over the limit of {max}");
            return (long)n;
        }

        public string String(string what)
        {
            ulong length = U64($"length of {what}");
            if (length > MaxStringBytes || (long)length > Left)
                throw Error($"{what} claims {length} bytes; {Left} remain (limit {MaxStringBytes})");
            var bytes = new byte[length];
            stream.ReadExactly(bytes);
            return Encoding.UTF8.GetString(bytes);
        }

        public object Value(GgufValueType type, string key, bool nested)
        {
            switch (type)
            {
                case GgufValueType.UInt8: return Take(1, key)[0];
                case GgufValueType.Int8: return (sbyte)Take(1, key)[0];
                case GgufValueType.UInt16: return BinaryPrimitives.ReadUInt16LittleEndian(Take(2, key));
                case GgufValueType.Int16: return BinaryPrimitives.ReadInt16LittleEndian(Take(2, key));
                case GgufValueType.UInt32: return U32(key);
                case GgufValueType.Int32: return BinaryPrimitives.ReadInt32LittleEndian(Take(4, key));
                case GgufValueType.Float32: return BinaryPrimitives.ReadSingleLittleEndian(Take(4, key));
                case GgufValueType.Bool: return Take(1, key)[0] != 0;
                case GgufValueType.String: return String(key);
                case GgufValueType.UInt64: return U64(key);
                case GgufValueType.Int64: return BinaryPrimitives.ReadInt64LittleEndian(Take(8, key));
                case GgufValueType.Float64: return BinaryPrimitives.ReadDoubleLittleEndian(Take(8, key));
                case GgufValueType.Array when !nested: return Array(key);
                default: throw Error($"metadata '{key}' has unsupported type {(uint)type}");
            }
        }

        private object Array(string key)
        {
            var type = (GgufValueType)U32($"element type of '{key}'");
            ulong count = U64($"length of '{key}'");
            // Every element takes at least one byte (a string at least eight), so the count is bounded by the file.
            long least = type == GgufValueType.String ? 8 : Math.Max(1, ElementBytes(type));
            if (count > (ulong)(Left / least))
                throw Error($"array '{key}' claims {count} elements; the file is shorter");
            return type switch
            {
                GgufValueType.String => Fill<string>(count, key, type),
                GgufValueType.Float32 => Fill<float>(count, key, type),
                GgufValueType.Int32 => Fill<int>(count, key, type),
                GgufValueType.UInt32 => Fill<uint>(count, key, type),
                GgufValueType.Int64 => Fill<long>(count, key, type),
                GgufValueType.UInt8 => Fill<byte>(count, key, type),
                GgufValueType.Bool => Fill<bool>(count, key, type),
                _ => Fill<object>(count, key, type),
            };
        }

        private T[] Fill<T>(ulong count, string key, GgufValueType type)
        {
            var values = new T[count];
            for (ulong i = 0; i < count; i++) values[i] = (T)Value(type, key, nested: true);
            return values;
        }

        private static int ElementBytes(GgufValueType type) => type switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            _ => 8,
        };

        public GgufTensorInfo TensorInfo()
        {
            string name = String("tensor name");
            uint dims = U32($"dimensions of '{name}'");
            if (dims is 0 or > MaxDims) throw Error($"tensor '{name}' has {dims} dimensions (1 to {MaxDims})");
            var shape = new long[dims];
            long elements = 1;
            for (int i = 0; i < dims; i++)
            {
                ulong n = U64($"shape of '{name}'");
                if (n == 0 || n > int.MaxValue) throw Error($"tensor '{name}' has dimension {n}");
                shape[i] = (long)n;
                elements = checked(elements * shape[i]);
                if (elements > 1L << 40) throw Error($"tensor '{name}' is implausibly large");
            }
            var type = (GgmlType)U32($"type of '{name}'");
            if (GgmlTypes.Block(type) is { } block && elements % block.Values != 0)
                throw Error($"tensor '{name}' has {elements} elements, not whole blocks of {block.Values}");
            ulong offset = U64($"offset of '{name}'");
            if (offset > long.MaxValue) throw Error($"tensor '{name}' has offset {offset}");
            return new GgufTensorInfo(name, shape, type, (long)offset);
        }
    }
}
