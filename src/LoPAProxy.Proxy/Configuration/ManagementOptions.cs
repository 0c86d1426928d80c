namespace LoPAProxy.Proxy.Configuration;

public sealed class ManagementOptions
{
    /// <summary>Where /metrics is served (with /healthz and /readyz), ";"-separated; the public port answers 404
    /// for it. Loopback by default: a Prometheus in the same pod, or set http://0.0.0.0:9464 to scrape it from
    /// outside. When the proxy itself listens on port 0, so does this, unless set.</summary>
    public string? Urls { get; set; }

    /// <summary>Loopback only by default: metrics are for the operator's scraper, not the tenants.</summary>
    public const string DefaultUrls = "http://127.0.0.1:9464";

    /// <summary>The management listener's URLs for a proxy listening on <paramref name="proxyUrls"/>.</summary>
    public string UrlsFor(string proxyUrls) =>
        Urls ?? (proxyUrls.EndsWith(":0", StringComparison.Ordinal) ? "http://127.0.0.1:0" : DefaultUrls);
}
