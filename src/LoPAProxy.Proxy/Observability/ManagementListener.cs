using System.Net;
using LoPAProxy.OpenAi;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace LoPAProxy.Proxy.Observability;

/// <summary>
/// Two kinds of listener: the public one (the OpenAI routes, tenant and admin APIs, probes) and the management one
/// (LoPA:Management:Urls, loopback by default) that alone serves /metrics — whose series name tenants and adapters
/// — beside /healthz and /readyz. Connections on a management listener are marked when they are accepted; the public
/// port answers 404 for /metrics, and the management port 404 for everything but those three paths.
/// </summary>
public sealed class ManagementListener
{
    public const string DefaultUrls = Configuration.ManagementOptions.DefaultUrls;
    private const string Mark = "lopa.management";
    private static readonly string[] ManagementPaths = ["/metrics", "/healthz", "/readyz"];
    private readonly List<ListenOptions> _management = new();

    /// <summary>The management listeners' addresses once the server has bound them (port 0 resolved).</summary>
    public IReadOnlyList<string> Urls => _management.Select(o => $"http://{o.IPEndPoint}").ToList();

    /// <summary>The server's addresses that are not management listeners: where the proxy serves.</summary>
    public static IReadOnlyList<string> PublicUrls(Microsoft.AspNetCore.Builder.WebApplication app)
    {
        var management = app.Services.GetService(typeof(ManagementListener)) as ManagementListener;
        IReadOnlyList<string> excluded = management?.Urls ?? [];
        return app.Urls.Where(u => !excluded.Contains(u, StringComparer.OrdinalIgnoreCase)).ToList();
    }

    /// <summary>Listens on the public and the management URLs (http only; "*", "+" and "0.0.0.0" mean every
    /// address, "localhost" the loopback ones).</summary>
    public void Configure(KestrelServerOptions kestrel, string publicUrls, string managementUrls)
    {
        foreach (string url in Split(publicUrls)) Listen(kestrel, url, _ => { });
        foreach (string url in Split(managementUrls))
        {
            Listen(kestrel, url, options =>
            {
                _management.Add(options);
                options.Use(next => connection =>
                {
                    connection.Items[Mark] = true;
                    return next(connection);
                });
            });
        }
    }

    /// <summary>Middleware: /metrics only on a management connection, only the management paths there.</summary>
    public static async Task GateAsync(HttpContext http, Func<Task> next)
    {
        bool management = http.Features.Get<IConnectionItemsFeature>()?.Items.ContainsKey(Mark) == true;
        string path = http.Request.Path.Value ?? "";
        bool allowed = management ? ManagementPaths.Contains(path) : path != "/metrics";
        if (allowed)
        {
            await next();
            return;
        }
        await ApiException.WriteAsync(http.Response, 404, $"no route for {http.Request.Method} {path}",
            "not_found_error", null, "route_not_found");
    }

    private static IEnumerable<string> Split(string urls) =>
        urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static void Listen(KestrelServerOptions kestrel, string url, Action<ListenOptions> configure)
    {
        string normalised = url.Replace("://*:", "://0.0.0.0:").Replace("://+:", "://0.0.0.0:");
        if (!Uri.TryCreate(normalised, UriKind.Absolute, out Uri? uri) || uri.Scheme != "http")
        {
            throw new InvalidOperationException($"'{url}' is not an http://host:port address (TLS ends in front of " +
                "the proxy: an ingress or a sidecar)");
        }

        if (uri.Host == "localhost") kestrel.ListenLocalhost(uri.Port, configure);
        else if (IPAddress.TryParse(uri.Host, out IPAddress? address)) kestrel.Listen(address, uri.Port, configure);
        else kestrel.ListenAnyIP(uri.Port, configure);
    }
}
