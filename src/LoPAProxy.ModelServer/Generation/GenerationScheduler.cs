using LoPAProxy.OpenAi;

namespace LoPAProxy.ModelServer.Generation;

/// <summary>
/// Admits at most MaxConcurrent generations at once and MaxQueued waiting; a request past that gets 503
/// at once rather than an unbounded wait. A waiter whose client leaves gives up its place.
/// </summary>
#pragma warning disable CA1001 // a SemaphoreSlim whose wait handle is never asked for holds nothing to release
public sealed class GenerationScheduler(ModelServerOptions options)
#pragma warning restore CA1001
{
    private readonly SemaphoreSlim _slots = new(Math.Max(1, options.MaxConcurrent));
    private int _admitted;

    public int InFlight => Volatile.Read(ref _admitted);

    public async Task<IDisposable> EnterAsync(CancellationToken cancel)
    {
        if (Interlocked.Increment(ref _admitted) > Math.Max(1, options.MaxConcurrent) + options.MaxQueued)
        {
            Interlocked.Decrement(ref _admitted);
            throw new ApiException(503, "the server is at capacity: too many requests are queued; retry later", code: "queue_full");
        }
        try { await _slots.WaitAsync(cancel); }
        catch { Interlocked.Decrement(ref _admitted); throw; }
        return new Lease(this);
    }

    private sealed class Lease(GenerationScheduler owner) : IDisposable
    {
        private int _done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) != 0) return;
            owner._slots.Release();
            Interlocked.Decrement(ref owner._admitted);
        }
    }
}
