using LoPAProxy.Proxy.Requests;

namespace LoPAProxy.Proxy.Dialects;

/// <summary>
/// One way of carrying a soft prompt to a model server (../shared/DESIGN.md §3). A dialect is registered by name
/// (<see cref="DialectServices.AddBackendDialect{T}"/>) and chosen per cluster by LoPA:Clusters:&lt;id&gt;:Dialect.
/// </summary>
public interface IBackendDialect
{
    /// <summary>The OpenAI endpoint whose requests this dialect can carry a soft prompt on.</summary>
    EndpointKind SoftPromptEndpoint { get; }

    /// <summary>
    /// Bytes the rewrite allocates per embedding value it builds (measured: `compare rewrite-memory`), which each
    /// request reserves from Limits:MaxRewriteBytesInFlight before it starts.
    /// </summary>
    double RewriteBytesPerValue { get; }

    /// <summary>
    /// Computes Z and rewrites the request in place (<see cref="DialectRequest.Body"/>) for the backend: the
    /// result says what was added, and where the backend wants it sent and how its answer comes back, if not as
    /// OpenAI's.
    /// </summary>
    Task<RewriteResult> RewriteAsync(DialectRequest request, CancellationToken cancel);
}
