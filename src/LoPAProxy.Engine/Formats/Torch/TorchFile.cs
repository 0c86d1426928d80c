using System.Text;
using LoPAProxy.Engine.Formats.Zip;
using LoPAProxy.Engine.Tensors;

namespace LoPAProxy.Engine.Formats.Torch;

/// <summary>A tensor read from a torch.save file: float32 values plus the dtype it was stored in.</summary>
public sealed record TorchTensor(DType StoredAs, Tensor Values);

/// <summary>
/// torch.save's zip format (PyTorch ≥ 1.6): writes single tensors exactly as torch.load(weights_only=True)
/// expects them (the bytes vLLM's prompt_embeds decoder reads), and reads single tensors and state dicts
/// through <see cref="RestrictedUnpickler"/>, which never runs pickle code.
/// </summary>
public static class TorchFile
{
    /// <summary>Default limit on the pickle program (a state dict of thousands of tensors fits easily).</summary>
    public const int MaxPickleBytes = 64 << 20;
    private const string Folder = "archive";

    // ---- writing ---------------------------------------------------------------------------

    /// <summary>The bytes of torch.save(tensor) for a float tensor stored as F32, F16 or BF16.</summary>
    public static byte[] SaveTensor(Tensor tensor, DType dtype = DType.F32)
    {
        Tensor t = tensor.Contiguous();
        var raw = new byte[t.Count * dtype.Size()];
        FloatConvert.Encode(t.Span, dtype, raw);
        var (before, after) = TensorFrame(dtype, t.Shape, System.IO.Hashing.Crc32.HashToUInt32(raw), raw.Length);
        return [.. before, .. raw, .. after];
    }

    /// <summary>
    /// torch.save's bytes around a tensor's raw data (<paramref name="dataLength"/> little-endian bytes of
    /// <paramref name="dtype"/>, CRC-32 <paramref name="dataCrc"/>): before + data + after is the whole file, so the
    /// data can be produced and sent piece by piece (<see cref="TorchTensorStream"/>).
    /// </summary>
    public static (byte[] Before, byte[] After) TensorFrame(DType dtype, ReadOnlySpan<int> shape, uint dataCrc,
        long dataLength)
    {
        if (dtype is not (DType.F32 or DType.F16 or DType.BF16))
            throw new ArgumentException($"torch writer supports F32, F16 and BF16, not {dtype}");
        long numel = 1;
        foreach (int n in shape) numel *= n;
        if (numel * dtype.Size() != dataLength) throw new ArgumentException("data length does not match the shape");
        var zip = new StoredZipWriter();
        zip.Add($"{Folder}/data.pkl", TensorPickle(dtype, checked((int)numel), shape));
        zip.Add($"{Folder}/byteorder", "little"u8);
        zip.AddDeferred($"{Folder}/data/0", dataCrc, dataLength);
        zip.Add($"{Folder}/version", "3\n"u8);
        return zip.ToParts();
    }

    /// <summary>Protocol-2 pickle of _rebuild_tensor_v2(storage '0', offset 0, size, contiguous stride, False, OrderedDict()).</summary>
    private static byte[] TensorPickle(DType dtype, int numel, ReadOnlySpan<int> shape)
    {
        var p = new MemoryStream();
        p.Write([0x80, 0x02]);                                              // PROTO 2
        Global(p, "torch._utils", "_rebuild_tensor_v2");
        p.WriteByte((byte)'(');                                              // MARK (outer args)
        p.WriteByte((byte)'(');                                              // MARK (persistent id)
        Unicode(p, "storage");
        Global(p, "torch", dtype switch { DType.F16 => "HalfStorage", DType.BF16 => "BFloat16Storage", _ => "FloatStorage" });
        Unicode(p, "0");
        Unicode(p, "cpu");
        Int(p, numel);
        p.WriteByte((byte)'t');                                              // TUPLE
        p.WriteByte((byte)'Q');                                              // BINPERSID
        Int(p, 0);                                                           // storage_offset
        IntTuple(p, shape);
        int[] strides = ShapeMath.ContiguousStrides(shape);
        IntTuple(p, strides);
        p.WriteByte(0x89);                                                   // NEWFALSE: requires_grad
        Global(p, "collections", "OrderedDict");
        p.WriteByte((byte)')');                                              // EMPTY_TUPLE
        p.WriteByte((byte)'R');                                              // REDUCE → backward_hooks
        p.WriteByte((byte)'t');                                              // TUPLE
        p.WriteByte((byte)'R');                                              // REDUCE → tensor
        p.WriteByte((byte)'.');                                              // STOP
        return p.ToArray();
    }

    private static void Global(Stream p, string module, string name) => p.Write(Encoding.ASCII.GetBytes($"c{module}\n{name}\n"));

    private static void Unicode(Stream p, string s)
    {
        byte[] b = Encoding.UTF8.GetBytes(s);
        p.WriteByte((byte)'X');
        p.Write(BitConverter.GetBytes((uint)b.Length));
        p.Write(b);
    }

    private static void Int(Stream p, long v)
    {
        if (v is >= 0 and < 256) { p.WriteByte((byte)'K'); p.WriteByte((byte)v); }
        else if (v is >= 0 and < 65536) { p.WriteByte((byte)'M'); p.Write(BitConverter.GetBytes((ushort)v)); }
        else if (v is >= int.MinValue and <= int.MaxValue) { p.WriteByte((byte)'J'); p.Write(BitConverter.GetBytes((int)v)); }
        else { p.WriteByte(0x8a); p.WriteByte(8); p.Write(BitConverter.GetBytes(v)); }
    }

    private static void IntTuple(Stream p, ReadOnlySpan<int> values)
    {
        if (values.Length == 0) { p.WriteByte((byte)')'); return; }
        if (values.Length > 3) p.WriteByte((byte)'(');
        foreach (int v in values) Int(p, v);
        p.WriteByte(values.Length switch { 1 => 0x85, 2 => 0x86, 3 => 0x87, _ => (byte)'t' });
    }

    // ---- reading ---------------------------------------------------------------------------

    /// <summary>Reads a file holding one tensor (what torch.save(tensor) writes).</summary>
    public static TorchTensor LoadTensor(byte[] file, string name)
    {
        var archive = Open(file, name);
        return archive.Root is TensorRef t
            ? archive.Materialise(t)
            : throw new TensorFileException(name, $"holds {Describe(archive.Root)}, not a single tensor");
    }

    /// <summary>Reads a state dict ({name: tensor}, dict or OrderedDict), keeping its order.</summary>
    public static IReadOnlyList<KeyValuePair<string, TorchTensor>> LoadStateDict(byte[] file, string name)
    {
        var archive = Open(file, name);
        if (archive.Root is not PickleDict dict) throw new TensorFileException(name, $"holds {Describe(archive.Root)}, not a state dict");
        var result = new List<KeyValuePair<string, TorchTensor>>(dict.Items.Count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (key, value) in dict.Items)
        {
            if (key is not string k) throw new TensorFileException(name, "state dict key is not a string");
            if (value is not TensorRef t) throw new TensorFileException(name, $"state dict entry '{k}' holds {Describe(value)}, not a tensor");
            if (!seen.Add(k)) throw new TensorFileException(name, $"state dict key '{k}' appears twice");
            result.Add(new(k, archive.Materialise(t)));
        }
        return result;
    }

    public static TorchTensor LoadTensor(string path) => LoadTensor(File.ReadAllBytes(path), path);

    private static string Describe(object? o) => o switch
    {
        null => "None",
        TensorRef => "a tensor",
        PickleDict => "a dict",
        PickleTuple => "a tuple",
        List<object?> => "a list",
        _ => $"a {o.GetType().Name.ToLowerInvariant()}",
    };

    private sealed class Archive(byte[] file, string name, string prefix, IReadOnlyDictionary<string, ZipEntry> entries, object? root)
    {
        public object? Root => root;

        public TorchTensor Materialise(TensorRef t)
        {
            string entryName = $"{prefix}data/{t.Storage.Key}";
            if (!entries.TryGetValue(entryName, out ZipEntry entry)) throw new TensorFileException(name, $"missing zip entry '{entryName}' for storage '{t.Storage.Key}'");
            int elem = t.Storage.DType.Size();
            if (t.Storage.Numel > entry.Length / elem || (long)entry.Length != t.Storage.Numel * elem)
                throw new TensorFileException(name, $"storage '{t.Storage.Key}' declares {t.Storage.Numel} {t.Storage.DType} elements but its entry holds {entry.Length} bytes");
            if (t.Size.Length > 0 && t.Size.Any(d => d < 0)) throw new TensorFileException(name, "tensor has a negative dimension");
            long count = ShapeMath.CheckedCount(t.Size, int.MaxValue);
            if (count < 0 || count > Array.MaxLength) throw new TensorFileException(name, $"tensor shape [{string.Join(", ", t.Size)}] is too large");
            if (t.StorageOffset < 0 || t.Stride.Any(s => s < 0)) throw new TensorFileException(name, "tensor has a negative offset or stride");
            if (count > 0)
            {
                // Highest element index the view touches must lie inside the storage.
                long last = t.StorageOffset;
                for (int d = 0; d < t.Size.Length; d++)
                {
                    if (t.Stride[d] > t.Storage.Numel) throw new TensorFileException(name, $"stride {t.Stride[d]} exceeds the storage");
                    last += (t.Size[d] - 1) * t.Stride[d];
                }
                if (last >= t.Storage.Numel) throw new TensorFileException(name, $"tensor view reaches element {last} of a storage of {t.Storage.Numel}");
            }
            var shape = t.Size.Select(d => (int)d).ToArray();
            var values = new float[count];
            ReadOnlySpan<byte> storage = file.AsSpan(entry.DataOffset, entry.Length);
            bool contiguous = t.Stride.SequenceEqual(ShapeMath.ContiguousStrides(shape).Select(s => (long)s));
            if (contiguous || count <= 1)
            {
                FloatConvert.Decode(storage.Slice((int)(t.StorageOffset * elem), (int)count * elem), t.Storage.DType, values);
            }
            else
            {
                var index = new long[shape.Length];
                Span<float> one = stackalloc float[1];
                for (long n = 0; n < count; n++)
                {
                    long off = t.StorageOffset;
                    for (int d = 0; d < shape.Length; d++) off += index[d] * t.Stride[d];
                    FloatConvert.Decode(storage.Slice((int)(off * elem), elem), t.Storage.DType, one);
                    values[n] = one[0];
                    for (int d = shape.Length - 1; d >= 0 && ++index[d] == shape[d]; d--) index[d] = 0;
                }
            }
            return new TorchTensor(t.Storage.DType, Tensor.FromArray(values, shape));
        }
    }

    private static Archive Open(byte[] file, string name)
    {
        var entries = StoredZipReader.ReadEntries(file, name);
        string? pkl = entries.Keys.Where(k => k == "data.pkl" || k.EndsWith("/data.pkl", StringComparison.Ordinal))
            .OrderBy(k => k.Length).FirstOrDefault();
        if (pkl == null) throw new TensorFileException(name, "missing zip entry 'data.pkl': not a torch.save archive");
        string prefix = pkl[..^"data.pkl".Length];
        if (prefix.Count(c => c == '/') > 1) throw new TensorFileException(name, $"data.pkl is nested too deep ('{pkl}')");
        foreach (string k in entries.Keys)
            if (!k.StartsWith(prefix, StringComparison.Ordinal)) throw new TensorFileException(name, $"zip entry '{k}' lies outside the archive folder '{prefix}'");
        if (!entries.TryGetValue(prefix + "version", out ZipEntry version) && !entries.TryGetValue(prefix + ".data/version", out version))
            throw new TensorFileException(name, $"missing zip entry '{prefix}version'");
        string v = Encoding.ASCII.GetString(file, version.DataOffset, Math.Min(version.Length, 16)).Trim();
        if (!int.TryParse(v, out int fmt) || fmt < 1 || fmt > 3) throw new TensorFileException(name, $"unsupported torch archive version '{v}'");
        if (entries.TryGetValue(prefix + "byteorder", out ZipEntry order))
        {
            string bo = Encoding.ASCII.GetString(file, order.DataOffset, Math.Min(order.Length, 16));
            if (bo != "little") throw new TensorFileException(name, $"byte order '{bo}' is not supported (only little)");
        }
        ZipEntry p = entries[pkl];
        if (p.Length > MaxPickleBytes) throw new TensorFileException(name, $"data.pkl is {p.Length} bytes, over the {MaxPickleBytes}-byte limit");
        object? root = RestrictedUnpickler.Load(file.AsSpan(p.DataOffset, p.Length).ToArray(), name);
        return new Archive(file, name, prefix, entries, root);
    }
}
