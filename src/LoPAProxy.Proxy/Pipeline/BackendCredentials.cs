using System.Net.Http.Headers;
using LoPAProxy.Proxy.Configuration;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace LoPAProxy.Proxy.Pipeline;

/// <summary>
/// The tenant's credentials stay on the client side of the proxy: only an allow-list of request headers reaches the
/// model server — content negotiation, the body's type and length, tracing (traceparent, tracestate, baggage), the
/// request id, the forwarding headers YARP adds — plus any names the operator lists in LoPA:ForwardHeaders. Every
/// other header (Authorization, cookies, any gateway's or cloud's key header, OpenAI-Organization, X-LoPA-*) is
/// dropped; the cluster's own key (LoPA:Clusters:&lt;id&gt;:ApiKey) is sent instead when one is set.
/// </summary>
public sealed class BackendCredentials(string? backendKey, IReadOnlySet<string> allowed) : RequestTransform
{
    /// <summary>Request headers forwarded without configuration (content headers: Content-Type and
    /// Content-Length).</summary>
    public static readonly string[] ForwardedByDefault =
    [
        "Accept", "Accept-Language", "User-Agent", "traceparent", "tracestate", "baggage", "x-request-id",
        "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Prefix",
    ];

    private static readonly string[] ContentHeaders = ["Content-Type", "Content-Length"];
    public const string LoPAHeaderPrefix = "X-LoPA-";

    public override ValueTask ApplyAsync(RequestTransformContext context)
    {
        HttpRequestHeaders headers = context.ProxyRequest.Headers;
        foreach (string name in headers.Select(h => h.Key).Where(n => !IsForwarded(n)).ToList()) headers.Remove(name);
        if (context.ProxyRequest.Content?.Headers is { } content)
        {
            foreach (string name in content.Select(h => h.Key).Where(n => !ContentHeaders.Contains(n,
                StringComparer.OrdinalIgnoreCase)).ToList())
            {
                content.Remove(name);
            }
        }

        if (backendKey is not null) headers.Authorization = new AuthenticationHeaderValue("Bearer", backendKey);
        return ValueTask.CompletedTask;
    }

    private bool IsForwarded(string name) => allowed.Contains(name) && !IsLoPAHeader(name);

    private static bool IsLoPAHeader(string name) => name.StartsWith(LoPAHeaderPrefix,
        StringComparison.OrdinalIgnoreCase);

    /// <summary>Adds the transform to every route, with the key of the route's cluster.</summary>
    public static void Apply(TransformBuilderContext builder, LoPAOptions options)
    {
        string? clusterId = builder.Cluster?.ClusterId ?? builder.Route.ClusterId;
        string? key = clusterId is not null && options.Clusters.TryGetValue(clusterId, out BackendOptions? backend)
            ? backend.ApiKey
            : null;
        var allowed = new HashSet<string>(ForwardedByDefault.Concat(options.ForwardHeaders),
            StringComparer.OrdinalIgnoreCase);
        builder.RequestTransforms.Add(new BackendCredentials(key, allowed));
    }
}
