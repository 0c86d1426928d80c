namespace LoPAProxy.Engine.Formats;

/// <summary>
/// A forward-only stream of known length whose bytes are produced as they are read: subclasses supply
/// <see cref="Read(Span{byte})"/> and <see cref="Stream.Length"/>; everything else is the Stream contract's ceremony. A
/// zero-byte read returns 0 without moving (readers such as YARP's body copy use one to wait for data).
/// </summary>
public abstract class ReadOnlyStream : Stream
{
    private long _position;

    public sealed override bool CanRead => true;
    public sealed override bool CanSeek => false;
    public sealed override bool CanWrite => false;

    public sealed override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    /// <summary>Fills <paramref name="destination"/> (not empty) with the next bytes; 0 only at the end.</summary>
    protected abstract int ReadNext(Span<byte> destination);

    public sealed override int Read(Span<byte> destination)
    {
        if (destination.IsEmpty) return 0;
        int n = ReadNext(destination);
        _position += n;
        return n;
    }

    public sealed override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public sealed override ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancel = default)
    {
        cancel.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Read(destination.Span));
    }

    public sealed override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancel) =>
        ReadAsync(buffer.AsMemory(offset, count), cancel).AsTask();

    public sealed override void Flush()
    {
    }

    public sealed override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public sealed override void SetLength(long value) => throw new NotSupportedException();
    public sealed override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
