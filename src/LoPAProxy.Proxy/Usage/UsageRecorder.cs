using System.Diagnostics;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Observability;
using LoPAProxy.Proxy.Store;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Usage;

/// <summary>
/// Sums each request's usage in memory per (tenant, adapter, hour) and writes the sums to the store every
/// LoPA:Usage:FlushSeconds and when the proxy stops; a failed write keeps the sums for the next one. Reads through
/// this class see this process's unwritten sums too. Also exports the totals as metrics.
/// </summary>
public sealed class UsageRecorder(IUsageStore store, TimeProvider clock, IOptions<LoPAOptions> options,
    ILogger<UsageRecorder> log) : BackgroundService
{
    private readonly object _gate = new();
    private Dictionary<(string Tenant, string Adapter, long Hour), UsageCounts> _pending = new();
    private readonly SemaphoreSlim _flushing = new(1, 1);

    /// <summary>Adds one request's usage.</summary>
    public void Record(UsageCounts usage)
    {
        long hour = HourOf(clock.GetUtcNow());
        UsageCounts counts = usage with { HourStart = hour };
        var key = (usage.Tenant, usage.Adapter, hour);
        lock (_gate)
            _pending[key] = _pending.TryGetValue(key, out UsageCounts? sum) ? sum.Plus(counts) : counts;
        Export(counts);
    }

    /// <summary>Stored buckets plus this process's unwritten sums, from ≤ hour &lt; to.</summary>
    public async Task<IReadOnlyList<UsageCounts>> ReadAsync(string? tenant, long from, long to,
        CancellationToken cancel)
    {
        await FlushAsync(cancel);
        return await store.ReadUsageAsync(tenant, from, to, cancel);
    }

    /// <summary>Tokens the tenant used since <paramref name="since"/> (whole hours: a period starts on one).</summary>
    public async Task<long> TokensSinceAsync(string tenant, DateTimeOffset since, CancellationToken cancel)
    {
        long from = HourOf(since);
        IReadOnlyList<UsageCounts> stored = await store.ReadUsageAsync(tenant, from, long.MaxValue, cancel);
        long tokens = stored.Sum(u => u.Tokens);
        lock (_gate)
            tokens += _pending.Values.Where(u => u.Tenant == tenant && u.HourStart >= from).Sum(u => u.Tokens);
        return tokens;
    }

    public async Task FlushAsync(CancellationToken cancel)
    {
        await _flushing.WaitAsync(cancel);
        try
        {
            Dictionary<(string, string, long), UsageCounts> batch;
            lock (_gate)
            {
                if (_pending.Count == 0) return;
                batch = _pending;
                _pending = new();
            }
            try
            {
                await store.AddUsageAsync(batch.Values, CancellationToken.None);
            }
            catch (Exception)
            {
                lock (_gate)
                {
                    foreach (var (key, counts) in batch)
                        _pending[key] = _pending.TryGetValue(key, out UsageCounts? sum) ? sum.Plus(counts) : counts;
                }

                throw;
            }
        }
        finally
        {
            _flushing.Release();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        var every = TimeSpan.FromSeconds(options.Value.Usage.FlushSeconds);
        using var timer = new PeriodicTimer(every, clock);
        try
        {
            while (await timer.WaitForNextTickAsync(stop)) await TryFlushAsync(stop);
        }
        catch (OperationCanceledException)
        {
            // stopping: StopAsync writes what is left
        }
    }

    public override async Task StopAsync(CancellationToken cancel)
    {
        await base.StopAsync(cancel);
        await TryFlushAsync(cancel);
    }

    private async Task TryFlushAsync(CancellationToken cancel)
    {
        try
        {
            await FlushAsync(cancel);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogWarning("usage could not be written to the store (kept for the next try): {Message}", e.Message);
        }
    }

    private static long HourOf(DateTimeOffset time) => time.ToUnixTimeSeconds() / 3600 * 3600;

    private static void Export(UsageCounts u)
    {
        var tags = new TagList { { "tenant", u.Tenant }, { "adapter", u.Adapter.Length == 0 ? "none" : u.Adapter } };
        if (u.PromptTokens > 0) ProxyTelemetry.UsagePromptTokens.Add(u.PromptTokens, tags);
        if (u.CompletionTokens > 0) ProxyTelemetry.UsageCompletionTokens.Add(u.CompletionTokens, tags);
        if (u.SoftPromptRows > 0) ProxyTelemetry.UsageSoftPromptRows.Add(u.SoftPromptRows, tags);
    }
}
