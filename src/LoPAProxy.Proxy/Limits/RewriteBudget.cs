using System.Globalization;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Observability;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Limits;

/// <summary>
/// The process-wide budget of bytes that soft-prompt rewrites may hold at once (Limits:MaxRewriteBytesInFlight):
/// a request reserves what its dialect's rewrite is measured to allocate for its embedding values before any row
/// is built, and gives it back when its answer has ended. Past the budget a request waits (at most
/// Limits:RewriteQueueSeconds) for others to finish, then gets 503 with Retry-After — so many clients with long
/// prompts queue instead of exhausting memory. A request that could never fit is a 400 at once.
/// </summary>
public sealed class RewriteBudget(IOptions<LoPAOptions> options)
{
    private readonly object _gate = new();
    private long _inFlight;
    private TaskCompletionSource _released = NewSignal();

    /// <summary>Bytes reserved by requests now in flight.</summary>
    public long InFlight => Interlocked.Read(ref _inFlight);

    /// <summary>Reserves <paramref name="bytes"/>; the lease gives them back when disposed.</summary>
    /// <exception cref="ApiException">400 when the request alone is over the budget; 503 when the budget stayed
    /// full for the whole queue time.</exception>
    public async Task<IDisposable> ReserveAsync(long bytes, CancellationToken cancel)
    {
        LimitOptions limits = options.Value.Limits;
        if (bytes > limits.MaxRewriteBytesInFlight)
        {
            throw ApiException.BadRequest($"the request's soft-prompt rewrite would hold about {bytes} bytes; the " +
                $"proxy allows {limits.MaxRewriteBytesInFlight} in flight (send fewer or shorter prompts)", "prompt",
                "request_too_large");
        }
        using var queued = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        queued.CancelAfter(TimeSpan.FromSeconds(limits.RewriteQueueSeconds));
        while (true)
        {
            Task released;
            lock (_gate)
            {
                if (_inFlight + bytes <= limits.MaxRewriteBytesInFlight)
                {
                    _inFlight += bytes;
                    ProxyTelemetry.RewriteBytesInFlight.Add(bytes);
                    return new Lease(this, bytes);
                }
                released = _released.Task;
            }
            try
            {
                await released.WaitAsync(queued.Token);
            }
            catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
            {
                throw Busy(limits);
            }
        }
    }

    private void Release(long bytes)
    {
        TaskCompletionSource signal;
        lock (_gate)
        {
            _inFlight -= bytes;
            signal = _released;
            _released = NewSignal();
        }
        ProxyTelemetry.RewriteBytesInFlight.Add(-bytes);
        signal.TrySetResult();
    }

    private static ApiException Busy(LimitOptions limits) =>
        new(503, $"the proxy is rewriting {limits.MaxRewriteBytesInFlight} bytes of soft prompts for other requests " +
            $"and none finished within {limits.RewriteQueueSeconds} s; retry shortly", null, "rewrite_capacity")
        {
            Headers = new Dictionary<string, string>
            {
                ["retry-after"] = Math.Max(1, limits.RewriteQueueSeconds).ToString(CultureInfo.InvariantCulture),
            },
        };

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private sealed class Lease(RewriteBudget owner, long bytes) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) owner.Release(bytes);
        }
    }
}
