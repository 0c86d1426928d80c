using LoPAProxy.Proxy.Configuration;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;

namespace LoPAProxy.Proxy.Hosting;

/// <summary>
/// Defaults for YARP's configuration: LoPA:Limits:BackendTimeoutSeconds for every cluster that sets no ActivityTimeout
/// of its own, and the "tenant" authorization policy for every route that names none — so no proxied route is open.
/// </summary>
public sealed class ProxyRouteDefaults(IOptions<LoPAOptions> options) : IProxyConfigFilter
{
    public ValueTask<ClusterConfig> ConfigureClusterAsync(ClusterConfig cluster, CancellationToken cancel) =>
        ValueTask.FromResult(cluster.HttpRequest?.ActivityTimeout is not null ? cluster : cluster with
        {
            HttpRequest = (cluster.HttpRequest
                ?? new ForwarderRequestConfig()) with
            { ActivityTimeout = TimeSpan.FromSeconds(options.Value.Limits.BackendTimeoutSeconds) },
        });

    public ValueTask<RouteConfig> ConfigureRouteAsync(RouteConfig route,
        ClusterConfig? cluster, CancellationToken cancel) =>
        ValueTask.FromResult(route.AuthorizationPolicy is not null ? route
            : route with { AuthorizationPolicy = Auth.ApiKeyAuthenticationHandler.TenantPolicy });
}
