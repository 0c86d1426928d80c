namespace LoPAProxy.Proxy.Configuration;

public sealed class AdapterOptions
{
    /// <summary>Retired: the per-tenant folder layout is imported into the store (`lopa adapter import`); a
    /// configuration that still sets it fails at start-up instead of silently serving nothing.</summary>
    public string? Directory { get; set; }
    /// <summary>Loaded adapters kept in memory (least recently used evicted).</summary>
    public int CacheSize { get; set; } = 256;
    /// <summary>
    /// A cached store adapter older than this is checked against the store again before use: the bound on how long
    /// another replica may serve a version after a change whose notification it missed.
    /// </summary>
    public double RevalidateSeconds { get; set; } = 5;
    /// <summary>Store API keys remembered (positive and negative lookups), each for RevalidateSeconds.</summary>
    public int KeyCacheSize { get; set; } = 10_000;
}
