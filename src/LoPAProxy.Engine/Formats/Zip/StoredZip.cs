using System.Buffers.Binary;
using System.Text;

namespace LoPAProxy.Engine.Formats.Zip;

/// <summary>One entry of a stored (uncompressed) zip: where its bytes lie in the archive.</summary>
public readonly record struct ZipEntry(string Name, int DataOffset, int Length);

/// <summary>
/// Reads the central directory of an uncompressed zip (the container torch.save writes), strictly:
/// bounded entry count and name length, no compression, sizes and CRCs checked, every range inside the file.
/// Zip64 records are understood; archives over 2 GiB are not (spans are int-indexed).
/// </summary>
public static class StoredZipReader
{
    private const uint EocdSig = 0x06054b50, Eocd64Sig = 0x06064b50, Eocd64LocatorSig = 0x07064b50,
        CentralSig = 0x02014b50, LocalSig = 0x04034b50;
    public const int MaxEntries = 4096, MaxNameLength = 4096;

    public static IReadOnlyDictionary<string, ZipEntry> ReadEntries(ReadOnlySpan<byte> zip, string file)
    {
        if (zip.Length < 22) throw new TensorFileException(file, $"not a zip archive: {zip.Length} bytes is shorter than an end-of-central-directory record");
        int eocd = -1;
        for (int i = zip.Length - 22, stop = Math.Max(0, zip.Length - 22 - 65535); i >= stop; i--)
            if (BinaryPrimitives.ReadUInt32LittleEndian(zip[i..]) == EocdSig) { eocd = i; break; }
        if (eocd < 0) throw new TensorFileException(file, "not a zip archive: no end-of-central-directory record");

        var r = new ByteReader(zip, file, eocd + 4);
        ushort disk = r.U16("disk number"), cdDisk = r.U16("central directory disk");
        ushort diskEntries = r.U16("entry count"), totalEntries = r.U16("entry count");
        long cdSize = r.U32("central directory size"), cdOffset = r.U32("central directory offset");
        long entries = totalEntries;
        if (disk != 0 || cdDisk != 0 || diskEntries != totalEntries) throw r.Error("multi-disk zip archives are not supported");
        if (cdOffset == 0xFFFFFFFF || cdSize == 0xFFFFFFFF || totalEntries == 0xFFFF)
        {
            if (eocd < 20) throw r.Error("zip64 end-of-central-directory locator missing");
            var loc = new ByteReader(zip, file, eocd - 20);
            if (loc.U32("zip64 locator") != Eocd64LocatorSig) throw r.Error("zip64 end-of-central-directory locator missing");
            loc.U32("zip64 disk");
            ulong recOffset = loc.U64("zip64 record offset");
            if (recOffset > (ulong)zip.Length - 56) throw r.Error($"zip64 record offset {recOffset} outside the file");
            var z = new ByteReader(zip, file, (int)recOffset);
            if (z.U32("zip64 record") != Eocd64Sig) throw r.Error("bad zip64 end-of-central-directory signature");
            z.U64("record size"); z.U16("version made by"); z.U16("version needed"); z.U32("disk"); z.U32("cd disk");
            z.U64("disk entries");
            ulong e64 = z.U64("entries"), s64 = z.U64("cd size"), o64 = z.U64("cd offset");
            if (e64 > MaxEntries || s64 > (ulong)zip.Length || o64 > (ulong)zip.Length) throw r.Error("zip64 central directory outside the file");
            entries = (long)e64; cdSize = (long)s64; cdOffset = (long)o64;
        }
        if (entries > MaxEntries) throw r.Error($"zip has {entries} entries, more than the limit of {MaxEntries}");
        if (cdOffset + cdSize > zip.Length) throw r.Error($"central directory [{cdOffset}, {cdOffset + cdSize}) outside the file of {zip.Length} bytes");

        var result = new Dictionary<string, ZipEntry>(StringComparer.Ordinal);
        var ranges = new List<(int Start, int End, string Name)>();
        var cd = new ByteReader(zip, file, (int)cdOffset);
        for (long n = 0; n < entries; n++)
        {
            if (cd.U32("central directory entry") != CentralSig) throw cd.Error($"bad central directory signature at entry {n}");
            cd.Take(4, "versions");
            ushort flags = cd.U16("flags"), method = cd.U16("method");
            cd.Take(4, "time");
            uint crc = cd.U32("crc");
            long compressed = cd.U32("compressed size"), size = cd.U32("size");
            int nameLen = cd.U16("name length"), extraLen = cd.U16("extra length"), commentLen = cd.U16("comment length");
            cd.Take(8, "attributes");
            long localOffset = cd.U32("local header offset");
            if (nameLen > MaxNameLength) throw cd.Error($"entry name of {nameLen} bytes exceeds {MaxNameLength}");
            string name = Encoding.UTF8.GetString(cd.Take(nameLen, "entry name"));
            ReadOnlySpan<byte> extra = cd.Take(extraLen, "extra field");
            cd.Take(commentLen, "comment");
            ApplyZip64Extra(extra, ref size, ref compressed, ref localOffset, file, name);

            if ((flags & 1) != 0) throw cd.Error($"entry '{name}' is encrypted");
            if (method != 0) throw cd.Error($"entry '{name}' is compressed (method {method}); torch.save archives store entries uncompressed");
            if (compressed != size) throw cd.Error($"entry '{name}' is stored but its sizes differ ({compressed} vs {size})");
            if (localOffset > zip.Length - 30) throw cd.Error($"entry '{name}' local header offset {localOffset} outside the file");
            var local = new ByteReader(zip, file, (int)localOffset);
            if (local.U32("local header") != LocalSig) throw local.Error($"entry '{name}' has a bad local header signature");
            local.Take(22, "local header");
            int lNameLen = local.U16("local name length"), lExtraLen = local.U16("local extra length");
            local.Take(lNameLen + lExtraLen, "local name and extra");
            long dataStart = local.Position;
            if (size > zip.Length - dataStart) throw local.Error($"entry '{name}' data [{dataStart}, {dataStart + size}) runs past the end of the file ({zip.Length} bytes)");
            uint actual = System.IO.Hashing.Crc32.HashToUInt32(zip.Slice((int)dataStart, (int)size));
            if (actual != crc) throw local.Error($"entry '{name}' fails its CRC-32 check");
            if (!result.TryAdd(name, new ZipEntry(name, (int)dataStart, (int)size))) throw local.Error($"duplicate zip entry '{name}'");
            ranges.Add(((int)localOffset, (int)(dataStart + size), name));
        }
        ranges.Sort((a, b) => a.Start.CompareTo(b.Start));
        for (int i = 1; i < ranges.Count; i++)
            if (ranges[i].Start < ranges[i - 1].End) throw new TensorFileException(file, $"zip entries '{ranges[i - 1].Name}' and '{ranges[i].Name}' overlap");
        return result;
    }

    private static void ApplyZip64Extra(ReadOnlySpan<byte> extra, ref long size, ref long compressed, ref long offset, string file, string name)
    {
        var r = new ByteReader(extra, file);
        while (r.Remaining >= 4)
        {
            ushort id = r.U16("extra id"), len = r.U16("extra length");
            ReadOnlySpan<byte> body = r.Take(len, "extra field body");
            if (id != 0x0001) continue;
            var z = new ByteReader(body, file);
            if (size == 0xFFFFFFFF) size = Checked(z.U64("zip64 size"));
            if (compressed == 0xFFFFFFFF) compressed = Checked(z.U64("zip64 compressed size"));
            if (offset == 0xFFFFFFFF) offset = Checked(z.U64("zip64 offset"));
        }

        long Checked(ulong v) => v > int.MaxValue ? throw new TensorFileException(file, $"entry '{name}' is larger than 2 GiB") : (long)v;
    }
}

/// <summary>
/// Writes an uncompressed zip the way PyTorch's writer does: entry data aligned to 64 bytes. One entry's data may
/// be left out — <see cref="AddDeferred"/> with its CRC-32 and length known in advance — so that the archive comes
/// as the bytes before that data and the bytes after it (<see cref="ToParts"/>), and the data itself can be streamed
/// between them without ever being held whole.
/// </summary>
#pragma warning disable CA1001 // its streams are MemoryStreams over managed arrays: nothing to release
public sealed class StoredZipWriter
#pragma warning restore CA1001
{
    private const int Alignment = 64;
    private MemoryStream _out = new();
    private MemoryStream? _beforeHole;
    private long _holeLength;
    private readonly List<(string Name, uint Crc, long Size, long Offset)> _entries = new();

    /// <summary>Where the next byte lands in the whole archive.</summary>
    private long Position => (_beforeHole?.Length ?? 0) + _holeLength + _out.Length;

    public void Add(string name, ReadOnlySpan<byte> data)
    {
        WriteLocalHeader(name, System.IO.Hashing.Crc32.HashToUInt32(data), data.Length);
        _out.Write(data);
    }

    /// <summary>An entry whose <paramref name="length"/> data bytes (CRC-32 <paramref name="crc"/>) the caller
    /// supplies between the two parts; at most one per archive.</summary>
    public void AddDeferred(string name, uint crc, long length)
    {
        if (_beforeHole is not null) throw new InvalidOperationException("one deferred entry per archive");
        if (length > uint.MaxValue) throw new ArgumentOutOfRangeException(nameof(length), "entries over 4 GiB");
        WriteLocalHeader(name, crc, length);
        _beforeHole = _out;
        _out = new MemoryStream();
        _holeLength = length;
    }

    private void WriteLocalHeader(string name, uint crc, long length)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        long offset = Position;
        long headerEnd = offset + 30 + nameBytes.Length;
        // PyTorch pads with an extra field ('FB' + length) so the data starts on a 64-byte boundary (mmap-friendly).
        int pad = (int)((Alignment - (headerEnd + 4) % Alignment) % Alignment);
        Span<byte> h = stackalloc byte[30];
        BinaryPrimitives.WriteUInt32LittleEndian(h, 0x04034b50);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], 0);   // version needed
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], 0);   // flags
        BinaryPrimitives.WriteUInt16LittleEndian(h[8..], 0);   // stored
        BinaryPrimitives.WriteUInt32LittleEndian(h[10..], 0);  // time/date: fixed for deterministic bytes
        BinaryPrimitives.WriteUInt32LittleEndian(h[14..], crc);
        BinaryPrimitives.WriteUInt32LittleEndian(h[18..], (uint)length);
        BinaryPrimitives.WriteUInt32LittleEndian(h[22..], (uint)length);
        BinaryPrimitives.WriteUInt16LittleEndian(h[26..], (ushort)nameBytes.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(h[28..], (ushort)(4 + pad));
        _out.Write(h);
        _out.Write(nameBytes);
        Span<byte> extra = stackalloc byte[4];
        BinaryPrimitives.WriteUInt16LittleEndian(extra, 0x4246); // 'FB'
        BinaryPrimitives.WriteUInt16LittleEndian(extra[2..], (ushort)pad);
        _out.Write(extra);
        _out.Write(new byte[pad]);
        _entries.Add((name, crc, length, offset));
    }

    /// <summary>The whole archive (no deferred entry).</summary>
    public byte[] ToArray()
    {
        if (_beforeHole is not null) throw new InvalidOperationException("the archive has a deferred entry: ToParts");
        return ToParts().After;
    }

    /// <summary>The archive's bytes before the deferred entry's data and after it (everything is After without
    /// one).</summary>
    public (byte[] Before, byte[] After) ToParts()
    {
        var after = new MemoryStream();
        _out.Position = 0;
        _out.CopyTo(after);
        long cdStart = Position;
        Span<byte> c = stackalloc byte[46];
        foreach (var e in _entries)
        {
            byte[] nameBytes = Encoding.UTF8.GetBytes(e.Name);
            c.Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(c, 0x02014b50);
            BinaryPrimitives.WriteUInt16LittleEndian(c[4..], 0x031E); // made by: unix, 3.0
            BinaryPrimitives.WriteUInt32LittleEndian(c[16..], e.Crc);
            BinaryPrimitives.WriteUInt32LittleEndian(c[20..], (uint)e.Size);
            BinaryPrimitives.WriteUInt32LittleEndian(c[24..], (uint)e.Size);
            BinaryPrimitives.WriteUInt16LittleEndian(c[28..], (ushort)nameBytes.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(c[38..], 0x81A40000); // -rw-r--r--
            BinaryPrimitives.WriteUInt32LittleEndian(c[42..], (uint)e.Offset);
            after.Write(c);
            after.Write(nameBytes);
        }
        long cdSize = after.Length - _out.Length;
        Span<byte> end = stackalloc byte[22];
        end.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(end, 0x06054b50);
        BinaryPrimitives.WriteUInt16LittleEndian(end[8..], (ushort)_entries.Count);
        BinaryPrimitives.WriteUInt16LittleEndian(end[10..], (ushort)_entries.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(end[12..], (uint)cdSize);
        BinaryPrimitives.WriteUInt32LittleEndian(end[16..], (uint)cdStart);
        after.Write(end);
        return (_beforeHole?.ToArray() ?? [], after.ToArray());
    }
}
