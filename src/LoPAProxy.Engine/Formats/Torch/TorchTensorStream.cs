using System.Buffers.Text;
using System.IO.Hashing;
using LoPAProxy.Engine.Formats.Zip;
using LoPAProxy.Engine.Tensors;

namespace LoPAProxy.Engine.Formats.Torch;

/// <summary>Writes row <paramref name="row"/> of a tensor (its <c>dim</c> float32 values) into
/// <paramref name="destination"/>.</summary>
public delegate void RowFiller(int row, Span<float> destination);

/// <summary>
/// The base64 text (UTF-8 bytes) of torch.save(tensor [rows, dim] in a float dtype), produced as it is read: rows
/// are filled by a callback, converted to the dtype and encoded a piece at a time, so neither the float rows, nor the
/// file, nor its base64 text is ever held whole. Its length is known before the first byte (the frame is fixed, the
/// CRC-32 of the data is taken in a first pass over the rows). The bytes equal
/// <c>Convert.ToBase64String(TorchFile.SaveTensor(tensor, dtype))</c> exactly (tested), so a backend's prefix cache
/// sees the same text.
/// </summary>
public sealed class TorchTensorStream : ReadOnlyStream
{
    private const int Chunk = 48 * 1024; // raw bytes per encoded chunk: a multiple of 3
    private readonly int _rows, _dim, _size;
    private readonly DType _dtype;
    private readonly RowFiller _fill;
    private readonly byte[] _before, _after;
    private readonly float[] _rowValues;
    private readonly byte[] _rowBytes, _raw = new byte[Chunk + 2], _encoded = new byte[Chunk / 3 * 4 + 4];
    private long _rawPosition;
    private readonly long _rawLength;
    private int _carry, _encodedStart, _encodedEnd, _bufferedRow = -1;

    /// <param name="knownRowCrc">the CRC-32 of a row's bytes in <paramref name="dtype"/> where the caller already
    /// knows it (null: not known); those rows are not converted to size the stream, their CRCs are combined
    /// (<see cref="Crc32Combine"/>).</param>
    public TorchTensorStream(int rows, int dim, DType dtype, RowFiller fill, Func<int, uint?>? knownRowCrc = null)
    {
        _rows = rows;
        _dim = dim;
        _dtype = dtype;
        _fill = fill;
        _size = dtype.Size();
        _rowValues = new float[dim];
        _rowBytes = new byte[dim * _size];
        long dataLength = (long)rows * dim * _size;
        (_before, _after) = TorchFile.TensorFrame(dtype, [rows, dim], DataCrc(knownRowCrc), dataLength);
        _rawLength = _before.Length + dataLength + _after.Length;
        Length = (_rawLength + 2) / 3 * 4;
    }

    /// <summary>The CRC-32 of all rows in the dtype: the first pass, before any byte is sent.</summary>
    private uint DataCrc(Func<int, uint?>? knownRowCrc)
    {
        if (knownRowCrc is null)
        {
            var crc = new Crc32();
            for (int r = 0; r < _rows; r++) crc.Append(Row(r));
            return crc.GetCurrentHashAsUInt32();
        }
        uint shift = Crc32Combine.ShiftOver(_rowBytes.Length), combined = 0;
        for (int r = 0; r < _rows; r++)
        {
            uint rowCrc = knownRowCrc(r) ?? Crc32.HashToUInt32(Row(r));
            combined = Crc32Combine.Combine(combined, rowCrc, shift);
        }
        return combined;
    }

    /// <summary>Bytes of the torch.save file the text encodes.</summary>
    public long FileLength => _rawLength;

    public override long Length { get; }

    protected override int ReadNext(Span<byte> destination)
    {
        if (_encodedStart == _encodedEnd && !EncodeNext()) return 0;
        int n = Math.Min(destination.Length, _encodedEnd - _encodedStart);
        _encoded.AsSpan(_encodedStart, n).CopyTo(destination);
        _encodedStart += n;
        return n;
    }

    /// <summary>Encodes the next chunk of the file into the output buffer; false at the end.</summary>
    private bool EncodeNext()
    {
        int filled = _carry + Produce(_raw.AsSpan(_carry, Chunk - _carry));
        if (filled == 0) return false;
        bool final = _rawPosition == _rawLength;
        int whole = final ? filled : filled / 3 * 3;
        Base64.EncodeToUtf8(_raw.AsSpan(0, whole), _encoded, out _, out int written, isFinalBlock: final);
        _carry = filled - whole;
        _raw.AsSpan(whole, _carry).CopyTo(_raw);
        _encodedStart = 0;
        _encodedEnd = written;
        return written > 0;
    }

    /// <summary>Copies the file's next bytes (frame or converted rows) into <paramref name="destination"/>.</summary>
    private int Produce(Span<byte> destination)
    {
        int written = 0;
        long dataStart = _before.Length, dataEnd = dataStart + (long)_rows * _dim * _size;
        while (written < destination.Length && _rawPosition < _rawLength)
        {
            ReadOnlySpan<byte> source;
            if (_rawPosition < dataStart)
            {
                source = _before.AsSpan((int)_rawPosition);
            }
            else if (_rawPosition >= dataEnd)
            {
                source = _after.AsSpan((int)(_rawPosition - dataEnd));
            }
            else
            {
                long inData = _rawPosition - dataStart;
                int row = (int)(inData / _rowBytes.Length);
                source = Row(row)[(int)(inData % _rowBytes.Length)..];
            }
            int n = Math.Min(source.Length, destination.Length - written);
            source[..n].CopyTo(destination[written..]);
            written += n;
            _rawPosition += n;
        }
        return written;
    }

    /// <summary>Row <paramref name="row"/> in the wire dtype (kept while it is being copied out).</summary>
    private ReadOnlySpan<byte> Row(int row)
    {
        if (_bufferedRow != row)
        {
            _fill(row, _rowValues);
            FloatConvert.Encode(_rowValues, _dtype, _rowBytes);
            _bufferedRow = row;
        }
        return _rowBytes;
    }
}
