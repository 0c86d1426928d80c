using System.Buffers.Binary;

namespace LoPAProxy.Engine.Formats;

/// <summary>Little-endian cursor over untrusted bytes: every read is bounds-checked and fails with <see cref="TensorFileException"/>.</summary>
internal ref struct ByteReader
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly string _file;

    public ByteReader(ReadOnlySpan<byte> data, string file, int position = 0)
    {
        _data = data; _file = file; Position = position;
    }

    public int Position { get; set; }
    public int Remaining => _data.Length - Position;
    public int Length => _data.Length;

    public ReadOnlySpan<byte> Take(long count, string what)
    {
        if (count < 0 || count > Remaining)
            throw new TensorFileException(_file, $"truncated: {what} needs {count} bytes at offset {Position}, {Remaining} remain");
        ReadOnlySpan<byte> s = _data.Slice(Position, (int)count);
        Position += (int)count;
        return s;
    }

    public byte U8(string what) => Take(1, what)[0];
    public ushort U16(string what) => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, what));
    public int I32(string what) => BinaryPrimitives.ReadInt32LittleEndian(Take(4, what));
    public uint U32(string what) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what));
    public ulong U64(string what) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what));
    public float F32(string what) => BinaryPrimitives.ReadSingleLittleEndian(Take(4, what));

    public TensorFileException Error(string problem) => new(_file, problem);
}
