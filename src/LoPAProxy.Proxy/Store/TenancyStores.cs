using LoPAProxy.Proxy.Configuration;

namespace LoPAProxy.Proxy.Store;

/// <summary>The one adapter store a proxy (or an offline command such as `lopa adapter import`) works on.</summary>
public static class TenancyStores
{
    /// <summary>The store LoPA:Store names: a SQLite file (the default) or PostgreSQL.</summary>
    public static ITenancyStore Open(StoreOptions options) => options.Kind switch
    {
        StoreKind.Sqlite => new SqliteTenancyStore(options.Path),
        StoreKind.Postgres => new PostgresTenancyStore(options.ConnectionString
            ?? throw new InvalidOperationException("LoPA:Store:ConnectionString is required for postgres")),
        _ => throw new InvalidOperationException(
            $"LoPA:Store:Kind '{OptionNames.Of(options.Kind)}' is not sqlite or postgres"),
    };

    /// <summary>
    /// <see cref="PrepareAsync"/> at start-up: a store that cannot be opened (a read-only or missing folder, a
    /// database that refuses) is one clear message naming it — the process then exits 1 — not a crash.
    /// </summary>
    /// <exception cref="StoreUnavailableException">the store cannot be opened or prepared.</exception>
    public static async Task PrepareOrExplainAsync(ITenancyStore store, StoreOptions options,
        IEnumerable<string> configuredTenants, CancellationToken cancel = default)
    {
        try
        {
            await PrepareAsync(store, configuredTenants, cancel);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            string where = options.Kind == StoreKind.Sqlite ? $"the SQLite file {Path.GetFullPath(options.Path)}"
                : "the PostgreSQL database LoPA:Store:ConnectionString names";
            throw new StoreUnavailableException($"the store cannot be opened ({where}): {e.Message}", e);
        }
    }

    /// <summary>Creates the schema if needed and the tenants that configuration names (their keys stay in
    /// configuration; the store holds their adapters).</summary>
    public static async Task PrepareAsync(ITenancyStore store, IEnumerable<string> configuredTenants,
        CancellationToken cancel = default)
    {
        await store.InitializeAsync(cancel);
        foreach (string tenant in configuredTenants)
            await EnsureTenantAsync(store, tenant, cancel);
    }

    /// <summary>Creates the tenant unless it exists (a concurrent creator winning the race is fine too).</summary>
    public static async Task EnsureTenantAsync(ITenancyStore store, string tenant, CancellationToken cancel = default)
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
