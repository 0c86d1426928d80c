using System.Text;

namespace LoPAProxy.Proxy.Dialects;

/// <summary>
/// An outgoing request body made of JSON text and embedded streams: the body serialised with a unique placeholder
/// string where each stream's text belongs, then cut at the placeholders — so a full-sequence dialect's base64
/// (<see cref="Engine.Formats.Torch.TorchTensorStream"/>) goes to the backend as it is produced, never held whole.
/// Its length is exact before the first byte (Content-Length).
/// </summary>
public sealed class StreamedBody : Stream
{
    private readonly IReadOnlyList<Stream> _parts;
    private int _current;
    private long _position;

    private StreamedBody(IReadOnlyList<Stream> parts)
    {
        _parts = parts;
        Length = parts.Sum(p => p.Length);
    }

    /// <summary>
    /// <paramref name="json"/> with each quoted placeholder's text replaced by its stream (the quotes stay: the
    /// stream's text is a JSON string's content, base64 needing no escapes).
    /// </summary>
    public static StreamedBody Of(byte[] json, IReadOnlyList<(string Placeholder, Stream Text)> embedded)
    {
        var parts = new List<Stream>();
        int start = 0;
        foreach (var (placeholder, text) in embedded)
        {
            byte[] marker = Encoding.UTF8.GetBytes(placeholder);
            int at = json.AsSpan(start).IndexOf(marker);
            if (at < 0) throw new InvalidOperationException($"placeholder {placeholder} is not in the body");
            parts.Add(new MemoryStream(json, start, at, writable: false));
            parts.Add(text);
            start += at + marker.Length;
        }
        parts.Add(new MemoryStream(json, start, json.Length - start, writable: false));
        return new StreamedBody(parts);
    }

    public override long Length { get; }
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> destination)
    {
        if (destination.IsEmpty) return 0; // a zero-byte read (YARP waits for data so) is not the end of a part
        while (_current < _parts.Count)
        {
            int n = _parts[_current].Read(destination);
            if (n > 0)
            {
                _position += n;
                return n;
            }
            _current++;
        }
        return 0;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancel = default)
    {
        cancel.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Read(destination.Span));
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancel) =>
        ReadAsync(buffer.AsMemory(offset, count), cancel).AsTask();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            foreach (Stream part in _parts) part.Dispose();
        base.Dispose(disposing);
    }
}
