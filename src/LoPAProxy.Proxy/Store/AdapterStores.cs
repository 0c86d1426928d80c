using LoPAProxy.Proxy.Configuration;

namespace LoPAProxy.Proxy.Store;

/// <summary>The one adapter store a proxy (or an offline command such as `lopa adapter import`) works on.</summary>
public static class AdapterStores
{
    /// <summary>The store LoPA:Store names: a SQLite file (the default) or PostgreSQL.</summary>
    public static IAdapterStore Open(StoreOptions options) => options.Kind switch
    {
        "sqlite" => new SqliteAdapterStore(options.Path),
        "postgres" => new PostgresAdapterStore(options.ConnectionString
            ?? throw new InvalidOperationException("LoPA:Store:ConnectionString is required for postgres")),
        _ => throw new InvalidOperationException($"LoPA:Store:Kind '{options.Kind}' is not sqlite or postgres"),
    };

    /// <summary>Creates the schema if needed and the tenants that configuration names (their keys stay in
    /// configuration; the store holds their adapters).</summary>
    public static async Task PrepareAsync(IAdapterStore store, IEnumerable<string> configuredTenants,
        CancellationToken cancel = default)
    {
        await store.InitializeAsync(cancel);
        foreach (string tenant in configuredTenants)
            await EnsureTenantAsync(store, tenant, cancel);
    }

    /// <summary>Creates the tenant unless it exists (a concurrent creator winning the race is fine too).</summary>
    public static async Task EnsureTenantAsync(IAdapterStore store, string tenant, CancellationToken cancel = default)
    {
        if (await store.GetTenantAsync(tenant, cancel) is not null) return;
        try
        {
            await store.CreateTenantAsync(tenant, cancel);
        }
        catch (StoreConflictException)
        {
            // created meanwhile by another process
        }
    }
}
