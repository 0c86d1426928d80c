using System.Net.Http.Headers;
using LoPAProxy.Proxy.Configuration;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace LoPAProxy.Proxy.Pipeline;

/// <summary>
/// The tenant's credentials stay on the client side of the proxy: Authorization, Proxy-Authorization, cookies, the
/// API-key headers other gateways use and every X-LoPA-* header are removed from what goes to the model server;
/// the cluster's own key (LoPA:Clusters:&lt;id&gt;:ApiKey) is sent instead when one is set.
/// </summary>
public sealed class BackendCredentials(string? backendKey) : RequestTransform
{
    private static readonly string[] Removed = { "Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key",
        "Api-Key" };
    public const string LoPAHeaderPrefix = "X-LoPA-";

    public override ValueTask ApplyAsync(RequestTransformContext context)
    {
        HttpRequestHeaders headers = context.ProxyRequest.Headers;
        foreach (string name in Removed) headers.Remove(name);
        foreach (string name in headers.Select(h => h.Key).Where(IsLoPAHeader).ToList()) headers.Remove(name);
        if (context.ProxyRequest.Content?.Headers is { } content)
            foreach (string name in content.Select(h => h.Key).Where(IsLoPAHeader).ToList()) content.Remove(name);
        if (backendKey is not null) headers.Authorization = new AuthenticationHeaderValue("Bearer", backendKey);
        return ValueTask.CompletedTask;
    }

    private static bool IsLoPAHeader(string name) => name.StartsWith(LoPAHeaderPrefix,
        StringComparison.OrdinalIgnoreCase);

    /// <summary>Adds the transform to every route, with the key of the route's cluster.</summary>
    public static void Apply(TransformBuilderContext builder, LoPAOptions options)
    {
        string? clusterId = builder.Cluster?.ClusterId ?? builder.Route.ClusterId;
        string? key = clusterId is not null && options.Clusters.TryGetValue(clusterId, out BackendOptions? backend)
            ? backend.ApiKey
            : null;
        builder.RequestTransforms.Add(new BackendCredentials(key));
    }
}
