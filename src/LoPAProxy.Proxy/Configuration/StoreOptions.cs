namespace LoPAProxy.Proxy.Configuration;

public sealed class StoreOptions
{
    /// <summary>sqlite (one process, or several on one host) or postgres (replicas). Adapters in per-tenant
    /// folders are brought in with `lopa adapter import`.</summary>
    public StoreKind Kind { get; set; } = StoreKind.Sqlite;
    /// <summary>SQLite database file.</summary>
    public string Path { get; set; } = "lopa.db";
    /// <summary>PostgreSQL connection string (from a secret).</summary>
    public string? ConnectionString { get; set; }
}
