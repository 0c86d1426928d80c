using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoPAProxy.Core.Adapters;
using LoPAProxy.ModelServer.OpenAi;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Dialects;
using LoPAProxy.Proxy.Tenancy;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace LoPAProxy.Proxy.Pipeline;

/// <summary>What one request did, for its log line (never keys or prompt text).</summary>
public sealed class RequestRecord
{
    public string? Tenant { get; set; }
    public string? Adapter { get; set; }
    public SoftPromptTimings Timings { get; } = new();
    public int BytesAdded { get; set; }
    public int SoftPromptRows { get; set; }
}

/// <summary>
/// Runs inside YARP's pipeline before forwarding: authenticate (Bearer tenant key) → find the adapter
/// (model "base:adapter" or header X-LoPA-Adapter) in the caller's tenant → compute Z → rewrite the body for
/// the route's backend dialect. A request that names no adapter is forwarded untouched. Afterwards, a
/// forwarding failure becomes OpenAI error JSON (502 unreachable/reset, 504 timeout).
/// </summary>
public sealed class LoPAMiddleware(RequestDelegate next, IOptions<LoPAOptions> options, TenantKeys keys, AdapterCatalog adapters,
    DialectRewriter rewriter, ILogger<LoPAMiddleware> log)
{
    public const string AdapterHeader = "X-LoPA-Adapter";

    public async Task InvokeAsync(HttpContext http)
    {
        var record = new RequestRecord();
        http.Features.Set(record);
        try
        {
            string? tenant = await keys.AuthenticateAsync(http.Request.Headers.Authorization, http.RequestAborted);
            if (tenant is null) throw new ApiException(401, "a valid tenant API key is required (Authorization: Bearer <key>)", null, "invalid_api_key");
            record.Tenant = tenant;
            string path = http.Request.Path.Value ?? "";
            bool chat = path.EndsWith("/chat/completions", StringComparison.Ordinal), completions = !chat && path.EndsWith("/completions", StringComparison.Ordinal);
            if (HttpMethods.IsPost(http.Request.Method) && (chat || completions)) await RewriteAsync(http, tenant, chat, record);
        }
        catch (ApiException e) when (!http.Response.HasStarted) { await e.WriteAsync(http.Response); return; }
        catch (BadHttpRequestException e) when (!http.Response.HasStarted)
        {
            await ApiException.WriteAsync(http.Response, e.StatusCode, e.StatusCode == 413 ? $"the request body is over the {options.Value.Limits.MaxBodyBytes}-byte limit" : e.Message,
                "invalid_request_error", null, e.StatusCode == 413 ? "body_too_large" : "bad_request");
            return;
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested) { return; }

        await next(http);

        if (http.Features.Get<IForwarderErrorFeature>() is { } failure && !http.Response.HasStarted)
        {
            bool timeout = failure.Error is ForwarderError.RequestTimedOut;
            log.LogWarning("backend {Error}: {Message}", failure.Error, failure.Exception?.Message);
            await ApiException.WriteAsync(http.Response, timeout ? 504 : 502,
                timeout ? "the model server did not answer in time" : $"the model server is unreachable or reset the connection ({failure.Error})",
                "server_error", null, timeout ? "backend_timeout" : "backend_unavailable");
        }
    }

    private async Task RewriteAsync(HttpContext http, string tenant, bool chat, RequestRecord record)
    {
        var body = await ReadBodyAsync(http);
        if (body is null) return;
        string? model = body["model"] is JsonValue mv && mv.TryGetValue(out string? m) ? m : null;
        string? adapterName = http.Request.Headers[AdapterHeader].FirstOrDefault();
        if (adapterName is null && model is not null && model.IndexOf(':') is var colon and > 0) adapterName = model[(colon + 1)..];
        if (string.IsNullOrEmpty(adapterName)) { Restore(http, body); return; } // no adapter: pass through untouched
        record.Adapter = adapterName;

        IReverseProxyFeature proxy = http.GetReverseProxyFeature();
        string clusterId = proxy.Cluster.Config.ClusterId;
        if (!options.Value.Clusters.TryGetValue(clusterId, out BackendOptions? backend))
            throw new ApiException(422, $"the backend for this route has no LoPA settings (LoPA:Clusters:{clusterId})", "model", "backend_not_configured");

        Core.Generation.SoftPromptGenerator? generator;
        try { generator = await adapters.FindAsync(tenant, adapterName, http.RequestAborted); }
        catch (AdapterException e) { throw new ApiException(422, $"adapter '{adapterName}' cannot be loaded: {e.Message}", "model", "adapter_invalid"); }
        // Unknown, and another tenant's, look the same: 404, never 403.
        if (generator is null) throw new ApiException(404, $"The adapter `{adapterName}` does not exist.", "model", "adapter_not_found");
        AdapterConfig config = generator.Adapter.Config;
        if (config.TokenDim != backend.HiddenSize)
            throw new ApiException(422, $"adapter '{adapterName}' makes {config.TokenDim}-wide prompts; the backend model '{backend.Model}' has hidden size {backend.HiddenSize}", "model", "adapter_incompatible");
        if (config.UsesEncoder && !Core.Encoders.EncoderFactory.Names.Contains(config.Encoder!))
            throw new ApiException(422, $"adapter '{adapterName}' needs encoder '{config.Encoder}', which this proxy does not have", "model", "adapter_incompatible");

        RewriteResult result;
        try
        {
            result = chat
                ? rewriter.RewriteChat(body, backend, generator, record.Timings, http.RequestAborted)
                : rewriter.RewriteCompletions(body, backend, generator, record.Timings, http.RequestAborted);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or InvalidOperationException && e is not ApiException)
        {
            throw new ApiException(422, $"adapter '{adapterName}' needs encoder '{config.Encoder}', which cannot be loaded here: {e.Message}", "model", "encoder_unavailable");
        }
        record.BytesAdded = result.BytesAdded;
        record.SoftPromptRows = result.SoftPromptRows;
        if (!chat && backend.Dialect == "sglang")
        {
            // SGLang takes embeddings on its native endpoint; its answer is mapped back by SglangResponse.
            http.Request.Path = "/generate";
            http.Features.Set(new SglangRequest(model?.Split(':')[0] ?? backend.Model, body["stream"]?.GetValue<bool>() == true, 1));
        }
        Restore(http, body);
    }

    private async Task<JsonObject?> ReadBodyAsync(HttpContext http)
    {
        long limit = options.Value.Limits.MaxBodyBytes;
        if (http.Request.ContentLength > limit) throw new ApiException(413, $"the request body is over the {limit}-byte limit", null, "body_too_large");
        var buffer = new MemoryStream();
        await http.Request.Body.CopyToAsync(buffer, http.RequestAborted);
        if (buffer.Length > limit) throw new ApiException(413, $"the request body is over the {limit}-byte limit", null, "body_too_large");
        buffer.Position = 0;
        JsonNode? node;
        try { node = JsonNode.Parse(buffer, documentOptions: new JsonDocumentOptions { MaxDepth = 64 }); }
        catch (JsonException e) { throw ApiException.BadRequest($"the body is not valid JSON: {e.Message}", null, "invalid_json"); }
        return node as JsonObject ?? throw ApiException.BadRequest("the body must be a JSON object", null, "invalid_json");
    }

    private static void Restore(HttpContext http, JsonObject body)
    {
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(body);
        http.Request.Body = new MemoryStream(bytes);
        http.Request.ContentLength = bytes.Length;
    }
}

/// <summary>One structured line per request: id, tenant, adapter, encoder/generator ms, bytes added, status, total ms.</summary>
public sealed class RequestLogMiddleware(RequestDelegate next, ILogger<RequestLogMiddleware> log)
{
    public async Task InvokeAsync(HttpContext http)
    {
        var sw = Stopwatch.StartNew();
        try { await next(http); }
        finally
        {
            RequestRecord? r = http.Features.Get<RequestRecord>();
            log.LogInformation("request {RequestId} {Method} {Path} tenant={Tenant} adapter={Adapter} encoder_ms={EncoderMs:F2} generator_ms={GeneratorMs:F2} soft_prompt_rows={Rows} bytes_added={BytesAdded} status={Status} total_ms={TotalMs:F1}",
                http.TraceIdentifier, http.Request.Method, http.Request.Path.Value, r?.Tenant, r?.Adapter, r?.Timings.EncoderMs ?? 0, r?.Timings.GeneratorMs ?? 0,
                r?.SoftPromptRows ?? 0, r?.BytesAdded ?? 0, http.Response.StatusCode, sw.Elapsed.TotalMilliseconds);
        }
    }
}
