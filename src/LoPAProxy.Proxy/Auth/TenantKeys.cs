using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Store;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Auth;

/// <summary>
/// Maps bearer keys to tenants. Only SHA-256 hashes are held; a configured key is compared to every configured
/// hash in constant time, so neither timing nor an early exit reveals which keys exist. Store keys are looked up by
/// hash and the answer — a tenant, or none — is remembered for Adapters:RevalidateSeconds (bounded by
/// Adapters:KeyCacheSize), so the store is not asked on every request. A change to a tenant or its keys (revoke,
/// disable, a new key; here or, through PostgreSQL, on another replica) drops what is remembered for it at once.
/// While the store is down, a remembered key keeps working however old; an unknown one is a 503.
/// </summary>
public sealed class TenantKeys
{
    private readonly (byte[] Hash, string Tenant)[] _keys;
    private readonly ITenancyStore _store;
    private readonly StoreOutage _outage;
    /// <summary>Hex SHA-256 → the tenant, or "" for a key the store does not know.</summary>
    private readonly ExpiringCache<string, string> _remembered;

    public TenantKeys(IOptions<LoPAOptions> options, ITenancyStore store, StoreOutage outage, TimeProvider clock)
    {
        _keys = options.Value.Tenants.SelectMany(t => t.Value.ApiKeys.Select(k => (Hash(k), t.Key))).ToArray();
        _store = store;
        _outage = outage;
        AdapterOptions adapters = options.Value.Adapters;
        _remembered = new ExpiringCache<string, string>(adapters.KeyCacheSize,
            TimeSpan.FromSeconds(adapters.RevalidateSeconds), clock);
        store.Changed += (tenant, adapter) =>
        {
            // A new key may be one remembered as unknown; a revoked one belongs to this tenant.
            if (adapter is null) _remembered.RemoveWhere((_, owner) => owner.Length == 0 || owner == tenant);
        };
    }

    public static byte[] Hash(string key) => Auth.BearerKey.HashOf(key);

    /// <summary>Configured keys first, then the store's (enabled tenants, unrevoked keys; looked up by SHA-256).</summary>
    /// <exception cref="OpenAi.ApiException">503 when the store is down and the key is not remembered.</exception>
    public async Task<string?> AuthenticateAsync(string? authorizationHeader, CancellationToken cancel)
    {
        if (Authenticate(authorizationHeader) is { } tenant) return tenant;
        if (Auth.BearerKey.FromHeader(authorizationHeader) is not { } key) return null;
        byte[] hash = key.Hash();
        string id = Convert.ToHexString(hash);
        if (_remembered.TryGetFresh(id, out string? owner)) return Known(owner);
        if (_outage.SkipStore && _remembered.TryGetAny(id, out owner)) return Known(owner);
        try
        {
            string? found = await _store.FindTenantByKeyHashAsync(hash, cancel);
            _remembered.Set(id, found ?? "");
            _outage.Recovered();
            return found;
        }
        catch (Exception e) when (StoreOutage.Is(e) && !cancel.IsCancellationRequested)
        {
            if (_remembered.TryGetAny(id, out owner))
            {
                _outage.Report(e);
                return Known(owner);
            }
            throw _outage.Refusal(e);
        }
    }

    /// <summary>The tenant whose key this is, or null.</summary>
    public string? Authenticate(string? authorizationHeader)
    {
        if (Auth.BearerKey.FromHeader(authorizationHeader) is not { } key) return null;
        string? tenant = null;
        foreach (var (hash, name) in _keys)
            if (key.Matches(hash)) tenant = name;
        return tenant;
    }

    private static string? Known(string owner) => owner.Length == 0 ? null : owner;
}
