using System.Text.Json.Nodes;
using LoPAProxy.Core.Generation;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Pipeline;
using LoPAProxy.Proxy.Requests;
using LoPAProxy.Proxy.SoftPrompts;
using Microsoft.AspNetCore.Http;

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
    /// Computes Z and rewrites the request in place (<see cref="DialectRequest.Body"/>) for the backend: the
    /// result says what was added, and where the backend wants it sent and how its answer comes back, if not as
    /// OpenAI's.
    /// </summary>
    Task<RewriteResult> RewriteAsync(DialectRequest request, CancellationToken cancel);
}

/// <summary>What a dialect is, known before any service is made (start-up validation reads it).</summary>
public interface IDialectTraits
{
    /// <summary>The name configuration uses.</summary>
    static abstract string Name { get; }

    /// <summary>The dialect needs the FM's tokenizer (and embedding table): LoPA:Clusters:&lt;id&gt;:ModelPath.</summary>
    static abstract bool NeedsModel { get; }
}

/// <summary>A request that names an adapter, measured and admitted, ready to be rewritten.</summary>
/// <param name="Prompts">Completions: the prompts as <see cref="PromptBudget"/> measured them (null for
/// chat).</param>
/// <param name="AskedModel">The model the client named ("base:adapter"), which its answer carries.</param>
public sealed record DialectRequest(HttpContext Http, JsonObject Body, BackendOptions Backend,
    SoftPromptGenerator Generator, IReadOnlyList<CompletionPrompt>? Prompts, SoftPromptTimings Timings,
    string AskedModel);

/// <summary>
/// What the rewrite added, for the request log. <paramref name="Embedded"/>: streams whose text takes the place of
/// placeholder strings in the body when it is sent (<see cref="StreamedBody"/>). <paramref name="Path"/>: the
/// backend's path for the request when it is not the OpenAI one. <paramref name="Answer"/>: maps the backend's
/// answer back to OpenAI's shape when it is not in it.
/// </summary>
public sealed record RewriteResult(int SoftPromptRows, long BytesAdded,
    IReadOnlyList<(string Placeholder, Stream Text)>? Embedded = null, PathString? Path = null,
    IDialectAnswer? Answer = null);

/// <summary>Turns a backend's native answer into OpenAI's (set on the request by its dialect's rewrite).</summary>
public interface IDialectAnswer
{
    Task WriteAsync(Yarp.ReverseProxy.Transforms.ResponseTransformContext context);
}
