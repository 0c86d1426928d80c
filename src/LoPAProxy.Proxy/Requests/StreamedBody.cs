using System.Text;

namespace LoPAProxy.Proxy.Requests;

/// <summary>
/// An outgoing request body made of JSON text and embedded streams: the body serialised with a unique placeholder
/// string where each stream's text belongs, then cut at the placeholders — so a full-sequence dialect's base64
/// (<see cref="Engine.Formats.Torch.TorchTensorStream"/>) goes to the backend as it is produced, never held whole.
/// Its length is exact before the first byte (Content-Length).
/// </summary>
public sealed class StreamedBody : Engine.Formats.ReadOnlyStream
{
    private readonly IReadOnlyList<Stream> _parts;
    private int _current;

    private StreamedBody(IReadOnlyList<Stream> parts)
    {
        _parts = parts;
        Length = parts.Sum(p => p.Length);
    }

    /// <summary>
    /// <paramref name="json"/> with each placeholder string replaced by its stream: its content (the quotes stay:
    /// base64 needs no escapes) or, for a JSON value, the whole string.
    /// </summary>
    public static StreamedBody Of(byte[] json, IReadOnlyList<EmbeddedText> embedded)
    {
        var parts = new List<Stream>();
        int start = 0;
        foreach (var (placeholder, text, isJsonValue) in embedded)
        {
            byte[] marker = Encoding.UTF8.GetBytes(isJsonValue ? $"\"{placeholder}\"" : placeholder);
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

    protected override int ReadNext(Span<byte> destination)
    {
        while (_current < _parts.Count)
        {
            int n = _parts[_current].Read(destination);
            if (n > 0) return n;
            _current++;
        }
        return 0;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            foreach (Stream part in _parts) part.Dispose();
        base.Dispose(disposing);
    }
}
