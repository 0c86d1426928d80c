namespace LoPAProxy.Proxy.Store;

/// <summary>
/// Tenants, their API keys (hashes only) and their adapters (immutable versions, one active per name). Every
/// method is scoped by tenant: no call reads or changes another tenant's rows. Writes are atomic: a failed or
/// interrupted upload leaves nothing behind. <see cref="Changed"/> reports changes — this process's own and, where
/// the store supports it (PostgreSQL's LISTEN/NOTIFY), other replicas'.
/// </summary>
public interface ITenancyStore : IAsyncDisposable
{
    /// <summary>"sqlite" or "postgres".</summary>
    string Kind { get; }

    Task InitializeAsync(CancellationToken cancel = default);

    /// <summary>Throws when the store cannot be reached (a connection and one trivial query).</summary>
    Task PingAsync(CancellationToken cancel = default);

    Task CreateTenantAsync(string name, CancellationToken cancel = default);
    Task<IReadOnlyList<TenantRecord>> ListTenantsAsync(CancellationToken cancel = default);
    Task<TenantRecord?> GetTenantAsync(string name, CancellationToken cancel = default);
    Task SetTenantDisabledAsync(string name, bool disabled, CancellationToken cancel = default);

    Task<KeyRecord> AddKeyAsync(string tenant, byte[] keyHash, CancellationToken cancel = default);
    Task<IReadOnlyList<KeyRecord>> ListKeysAsync(string tenant, CancellationToken cancel = default);
    Task<bool> RevokeKeyAsync(string tenant, string keyId, CancellationToken cancel = default);
    /// <summary>The enabled tenant owning an unrevoked key with this SHA-256, or null.</summary>
    Task<string?> FindTenantByKeyHashAsync(byte[] keyHash, CancellationToken cancel = default);

    /// <summary>
    /// Stores one immutable version. The quota is checked in the same transaction as the insert, with the tenant's
    /// writes serialised, so concurrent uploads can never take a tenant past it.
    /// </summary>
    /// <exception cref="StoreQuotaException">the tenant would exceed <paramref name="quota"/>.</exception>
    Task<AdapterVersionInfo> PutAdapterAsync(string tenant, string name, string version, string configJson,
        byte[] weights,
        long parameters, bool activate, AdapterQuota? quota = null, CancellationToken cancel = default);
    Task<IReadOnlyList<AdapterVersionInfo>> ListAdaptersAsync(string tenant, CancellationToken cancel = default);
    /// <summary>A version, or the active one when <paramref name="version"/> is null.</summary>
    Task<StoredAdapter?> GetAdapterAsync(string tenant, string name, string? version,
        CancellationToken cancel = default);
    /// <summary>The version a reference resolves to now (the active one when version is null), without the
    /// weights.</summary>
    Task<string?> ResolveVersionAsync(string tenant, string name, string? version, CancellationToken cancel = default);
    /// <summary>Deletes one version, or every version when <paramref name="version"/> is null; false when nothing
    /// matched.</summary>
    Task<bool> DeleteAdapterAsync(string tenant, string name, string? version, CancellationToken cancel = default);
    Task<bool> ActivateAsync(string tenant, string name, string version, CancellationToken cancel = default);
    Task<(int Count, long Bytes)> UsageAsync(string tenant, CancellationToken cancel = default);

    /// <summary>Raised with (tenant, adapter name) after a change; adapter name is null for tenant/key
    /// changes.</summary>
    event Action<string, string?>? Changed;
}
