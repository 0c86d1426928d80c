using System.Text.Json.Nodes;
using LoPAProxy.Core.Generation;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.SoftPrompts;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.Proxy.Dialects;

/// <summary>A request that names an adapter, measured and admitted, ready to be rewritten.</summary>
/// <param name="Prompts">Completions: the prompts as <see cref="PromptBudget"/> measured them (null for
/// chat).</param>
/// <param name="AskedModel">The model the client named ("base:adapter"), which its answer carries.</param>
public sealed record DialectRequest(HttpContext Http, JsonObject Body, BackendOptions Backend,
    SoftPromptGenerator Generator, IReadOnlyList<CompletionPrompt>? Prompts, SoftPromptTimings Timings,
    string AskedModel);
