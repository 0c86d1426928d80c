using System.Buffers;
using System.Text.Json;
using LoPAProxy.Engine.Formats;
using LoPAProxy.Engine.Formats.Torch;

namespace LoPAProxy.Proxy.Requests;

/// <summary>
/// [[d numbers] × rows] as JSON text (SGLang's input_embeds), produced a row at a time while the body is sent: each
/// number as System.Text.Json writes a float (its shortest round-trip form), so the text is what Utf8JsonWriter
/// writes for the whole array. The length is known before the first byte: a first pass formats every row once
/// and counts (rows whose length the caller knows are skipped) — the rows are never held together.
/// </summary>
public sealed class JsonRowsStream : ReadOnlyStream
{
    private readonly int _rows;
    private readonly RowFiller _fill;
    private readonly float[] _values;
    private readonly ArrayBufferWriter<byte> _text;
    private readonly Utf8JsonWriter _writer;
    private int _next;
    private int _served;
    private bool _closed;

    private static readonly JsonWriterOptions WriterOptions = new() { SkipValidation = true };

    /// <param name="knownRowLength">the length of a row's text where the caller already knows it (null: not
    /// known); those rows are not formatted to size the stream.</param>
    public JsonRowsStream(int rows, int dim, RowFiller fill, Func<int, int?>? knownRowLength = null)
    {
        _rows = rows;
        _fill = fill;
        _values = new float[dim];
        _text = new ArrayBufferWriter<byte>(dim * 16 + 8);
        _writer = new Utf8JsonWriter(_text, WriterOptions);
        long length = 2 + Math.Max(0, rows - 1); // the brackets, the commas
        for (int r = 0; r < rows; r++) length += knownRowLength?.Invoke(r) ?? FormatRow(r);
        Length = length;
        _text.Clear();
    }

    /// <summary>The length of one row's text, "[v,…]", as this stream writes it.</summary>
    public static int TextLength(ReadOnlySpan<float> row)
    {
        var text = new ArrayBufferWriter<byte>(row.Length * 16 + 8);
        using var writer = new Utf8JsonWriter(text, WriterOptions);
        Write(writer, row);
        return text.WrittenCount;
    }

    public override long Length { get; }

    protected override int ReadNext(Span<byte> destination)
    {
        if (_served == _text.WrittenCount && !Produce()) return 0;
        int n = Math.Min(destination.Length, _text.WrittenCount - _served);
        _text.WrittenSpan.Slice(_served, n).CopyTo(destination);
        _served += n;
        return n;
    }

    /// <summary>The next piece of text: "[" and the first row, ",row", or the closing "]".</summary>
    private bool Produce()
    {
        if (_closed) return false;
        _served = 0;
        if (_next == _rows)
        {
            _text.Clear();
            _text.Write("]"u8);
            _closed = true;
            return true;
        }
        _text.Clear();
        _text.Write(_next == 0 ? "["u8 : ","u8);
        FormatRow(_next++, clear: false);
        return true;
    }

    /// <summary>Row <paramref name="row"/> as "[v,…]" appended to the text; returns its length.</summary>
    private int FormatRow(int row, bool clear = true)
    {
        if (clear) _text.Clear();
        int before = _text.WrittenCount;
        _fill(row, _values);
        _writer.Reset(_text);
        Write(_writer, _values);
        return _text.WrittenCount - before;
    }

    private static void Write(Utf8JsonWriter writer, ReadOnlySpan<float> row)
    {
        writer.WriteStartArray();
        foreach (float v in row) writer.WriteNumberValue(v);
        writer.WriteEndArray();
        writer.Flush();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _writer.Dispose();
        base.Dispose(disposing);
    }
}
