using System.Collections.Concurrent;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Store;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Limits;

/// <summary>
/// A tenant's limits in effect: its overrides from the store over LoPA:RateLimits. Overrides are cached, dropped
/// when the store reports a change to the tenant (this replica's, or another's through PostgreSQL), and read again
/// after LoPA:Adapters:RevalidateSeconds at the latest.
/// </summary>
public sealed class TenantLimitResolver
{
    private readonly IUsageStore _store;
    private readonly TimeProvider _clock;
    private readonly TenantLimits _defaults;
    private readonly TimeSpan _revalidate;
    private readonly ConcurrentDictionary<string, (TenantLimitOverrides Overrides, DateTimeOffset Read)> _cache = new();

    public TenantLimitResolver(IUsageStore store, IAdapterStore changes, TimeProvider clock,
        IOptions<LoPAOptions> options)
    {
        _store = store;
        _clock = clock;
        _defaults = TenantLimits.From(options.Value.RateLimits);
        _revalidate = TimeSpan.FromSeconds(options.Value.Adapters.RevalidateSeconds);
        changes.Changed += (tenant, adapter) =>
        {
            if (adapter is null) _cache.TryRemove(tenant, out _);
        };
    }

    public TenantLimits Defaults => _defaults;

    public async Task<TenantLimits> ForAsync(string tenant, CancellationToken cancel) =>
        (await OverridesAsync(tenant, cancel)).Over(_defaults);

    public async Task<TenantLimitOverrides> OverridesAsync(string tenant, CancellationToken cancel)
    {
        DateTimeOffset now = _clock.GetUtcNow();
        if (_cache.TryGetValue(tenant, out var cached) && now - cached.Read < _revalidate) return cached.Overrides;
        TenantLimitOverrides overrides = await _store.GetLimitsAsync(tenant, cancel) ?? TenantLimitOverrides.None;
        _cache[tenant] = (overrides, now);
        return overrides;
    }
}
