using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Store;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Limits;

/// <summary>
/// A tenant's limits in effect: its overrides from the store over LoPA:RateLimits. Overrides are cached, dropped
/// when the store reports a change to the tenant (this replica's, or another's through PostgreSQL), and read again
/// after LoPA:Adapters:RevalidateSeconds at the latest; while the store is down, the last ones read (a tenant never
/// read: 503).
/// </summary>
public sealed class TenantLimitResolver
{
    private readonly IUsageStore _store;
    private readonly TenantLimits _defaults;
    private readonly ExpiringCache<string, TenantLimitOverrides> _cache;
    private readonly StoreOutage? _outage;

    public TenantLimitResolver(IUsageStore store, ITenancyStore changes, TimeProvider clock,
        IOptions<LoPAOptions> options, StoreOutage? outage = null)
    {
        _store = store;
        _outage = outage;
        _defaults = TenantLimits.From(options.Value.RateLimits);
        _cache = new ExpiringCache<string, TenantLimitOverrides>(100_000,
            TimeSpan.FromSeconds(options.Value.Adapters.RevalidateSeconds), clock);
        changes.Changed += (tenant, adapter) =>
        {
            if (adapter is null) _cache.Remove(tenant);
        };
    }

    public TenantLimits Defaults => _defaults;

    public async Task<TenantLimits> ForAsync(string tenant, CancellationToken cancel) =>
        (await OverridesAsync(tenant, cancel)).Over(_defaults);

    public async Task<TenantLimitOverrides> OverridesAsync(string tenant, CancellationToken cancel)
    {
        if (_cache.TryGetFresh(tenant, out TenantLimitOverrides? cached)) return cached;
        if (_outage?.SkipStore == true && _cache.TryGetAny(tenant, out cached)) return cached;
        TenantLimitOverrides overrides;
        try
        {
            overrides = await _store.GetLimitsAsync(tenant, cancel) ?? TenantLimitOverrides.None;
        }
        catch (Exception e) when (StoreOutage.Is(e) && !cancel.IsCancellationRequested
            && _cache.TryGetAny(tenant, out cached))
        {
            _outage?.Report(e);
            return cached; // the store is down: the last overrides read still hold
        }
        _cache.Set(tenant, overrides);
        return overrides;
    }
}
