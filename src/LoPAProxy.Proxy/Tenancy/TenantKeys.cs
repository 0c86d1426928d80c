using System.Security.Cryptography;
using System.Text;
using LoPAProxy.Proxy.Configuration;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Tenancy;

/// <summary>
/// Maps bearer keys to tenants. Only SHA-256 hashes are held; a presented key is hashed and compared to every
/// known hash in constant time, so neither timing nor an early exit reveals which keys exist.
/// </summary>
public sealed class TenantKeys
{
    private readonly (byte[] Hash, string Tenant)[] _keys;
    private readonly Store.IAdapterStore _store;

    public TenantKeys(IOptions<LoPAOptions> options, Store.IAdapterStore store)
    {
        _keys = options.Value.Tenants.SelectMany(t => t.Value.ApiKeys.Select(k => (Hash(k), t.Key))).ToArray();
        _store = store;
    }

    public static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    /// <summary>Configured keys first, then the store's (enabled tenants, unrevoked keys; looked up by SHA-256).</summary>
    public async Task<string?> AuthenticateAsync(string? authorizationHeader, CancellationToken cancel)
    {
        if (Authenticate(authorizationHeader) is { } tenant) return tenant;
        if (authorizationHeader is null) return null;
        if (!authorizationHeader.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return null;
        return await _store.FindTenantByKeyHashAsync(Hash(authorizationHeader[7..].Trim()), cancel);
    }

    /// <summary>The tenant whose key this is, or null.</summary>
    public string? Authenticate(string? authorizationHeader)
    {
        if (authorizationHeader is null) return null;
        if (!authorizationHeader.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return null;
        byte[] presented = Hash(authorizationHeader[7..].Trim());
        string? tenant = null;
        foreach (var (hash, name) in _keys)
            if (CryptographicOperations.FixedTimeEquals(hash, presented)) tenant = name;
        return tenant;
    }
}
