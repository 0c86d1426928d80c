using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Generation;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Dialects;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Observability;
using LoPAProxy.Proxy.Requests;
using LoPAProxy.Proxy.Tenancy;
using LoPAProxy.Proxy.Usage;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Forwarder;

namespace LoPAProxy.Proxy.Pipeline;

/// <summary>
/// Runs inside YARP's pipeline before forwarding: authenticate (Bearer tenant key) → classify the path the way the
/// backend will (<see cref="RequestRoute"/>) → read the JSON body (strict, bounded) → refuse or check client-supplied
/// embeddings → find the adapter (model "base:adapter" or header X-LoPA-Adapter) in the caller's tenant → measure
/// prompts against the backend's context (<see cref="PromptBudget"/>) → admit against the tenant's limits
/// (<see cref="RateLimiter"/>) → compute Z → rewrite the body for the route's backend dialect, asking for stream
/// usage. A request that names no adapter is forwarded without a soft prompt; a request that names one is never
/// forwarded without it (other endpoints refuse adapters). Afterwards, a forwarding failure becomes OpenAI error
/// JSON (502/504), or an SSE error event when a stream had started; when the answer has ended its usage is
/// recorded and its limiter reservation settled (<see cref="RequestAccounting"/>).
/// </summary>
public sealed class LoPAMiddleware(RequestDelegate next, IOptions<LoPAOptions> options,
    AdapterCatalog adapters, PromptBudget budget, ClientEmbeddings clientEmbeddings,
    RateLimiter limiter, RequestAccounting accounting, ILogger<LoPAMiddleware> log)
{
    public async Task InvokeAsync(HttpContext http)
    {
        var record = new RequestRecord();
        http.Features.Set(record);
        // The route's "tenant" policy admitted the caller (Auth/ApiKeyAuthentication); checked again here so that a
        // route configured with another policy still never forwards without a tenant.
        string tenant = Auth.ApiKeyAuthentication.TenantOf(http.User)
            ?? throw Errors.InvalidApiKey();
        record.Tenant = tenant;
        RequestRoute route = RequestRoute.Classify(http.Request.Path);
        if (route.Kind != EndpointKind.Other) http.Request.Path = route.CanonicalPath;
        if (ModelList.Handles(http.Request, route) && string.IsNullOrEmpty(http.Request.Headers[LoPAHeaders.Adapter]))
        {
            await ModelList.WriteAsync(http, tenant, options.Value, adapters);
            return;
        }
        http.Response.OnCompleted(() => accounting.CompleteAsync(http));
        long prepared = Stopwatch.GetTimestamp();
        using (ProxyTelemetry.Activities.StartActivity("lopa.rewrite"))
            await PrepareAsync(http, tenant, route, record);
        if (record.Adapter is not null) ProxyTelemetry.RewriteDuration.Record(Stopwatch.GetElapsedTime(prepared).TotalSeconds);

        StreamFailureGuard guard = StreamFailureGuard.Install(http);
        long forwarded = Stopwatch.GetTimestamp();
        if (record.Streaming) ProxyTelemetry.ActiveStreams.Add(1);
        record.Forwarded = true;
        try
        {
            using (ProxyTelemetry.Activities.StartActivity("lopa.forward"))
                await next(http);
        }
        finally
        {
            if (record.Streaming) ProxyTelemetry.ActiveStreams.Add(-1);
            ProxyTelemetry.BackendDuration.Record(Stopwatch.GetElapsedTime(forwarded).TotalSeconds);
            await guard.CompleteAsync();
        }
        if (http.Features.Get<IForwarderErrorFeature>() is { } failure && !http.Response.HasStarted)
            await WriteForwardingErrorAsync(http, failure);
    }

    private async Task PrepareAsync(HttpContext http, string tenant, RequestRoute route, RequestRecord record)
    {
        string? headerAdapter = http.Request.Headers[LoPAHeaders.Adapter].FirstOrDefault();
        JsonObject? body = HasJsonBody(http.Request, route) ? await JsonBodies.ReadObjectAsync(http.Request,
            options.Value.Limits.MaxBodyBytes, http.RequestAborted) : null;
        string? model = body?["model"] is JsonValue mv && mv.TryGetValue(out string? m) ? m : null;
        string? adapterName = string.IsNullOrEmpty(headerAdapter) ? AdapterReference.OfModel(model) : headerAdapter;
        BackendOptions? backend = BackendOf(http);
        bool generation = route.TakesAdapter && HttpMethods.IsPost(http.Request.Method);
        if (adapterName is not null && !generation)
        {
            throw ApiException.BadRequest(
                $"adapters apply to POST /v1/chat/completions and /v1/completions only, not {http.Request.Method} {route.CanonicalPath}",
                "model", "adapter_not_supported");
        }

        if (generation && body is not null) RequireModel(body, backend, adapterName);
        if (body is not null)
        {
            record.Streaming = JsonAccess.Flag(body, "stream");
            clientEmbeddings.Police(body, tenant, backend);
        }
        RewritePlan? plan = generation && backend is not null && body is not null
            ? await PlanAsync(http, body, tenant, route, backend, adapterName, record) : null;
        await AdmitAsync(http, tenant, record, plan?.Reserved ?? default);
        if (plan is null)
        {
            if (body is not null) JsonBodies.Replace(http.Request, body);
            return;
        }
        http.Features.Set(AnswerMeter.ForRequest(body!, backend!.StreamUsage));
        IReadOnlyList<EmbeddedText>? embedded = plan.Generator is not null
            ? await RewriteAsync(http, body!, route, backend, plan, record) : null;
        JsonBodies.Replace(http.Request, body!, embedded);
    }

    /// <summary>What a generation request will cost and, when it names an adapter, which one.</summary>
    private sealed record RewritePlan(SoftPromptGenerator? Generator, IReadOnlyList<CompletionPrompt>? Prompts,
        string AskedModel, TokenReservation Reserved);

    /// <summary>Finds the adapter (so its m rows are counted) and measures the prompts; nothing is encoded
    /// yet.</summary>
    private async Task<RewritePlan> PlanAsync(HttpContext http, JsonObject body, string tenant, RequestRoute route,
        BackendOptions backend, string? adapterName, RequestRecord record)
    {
        SoftPromptGenerator? generator = null;
        if (adapterName is not null)
        {
            using (ProxyTelemetry.Activities.StartActivity("lopa.adapter_lookup"))
                generator = await FindAdapterAsync(tenant, adapterName, backend, http);
        }
        record.Adapter = adapterName;
        // The adapter's own generation settings fill what the request leaves unset, before anything is measured.
        if (generator?.Adapter.Config.Defaults is { } defaults)
        {
            defaults.ApplyTo(body);
            http.Features.Get<Responses.ResponsesAnswer>()?.UseSettingsOf(body);
        }
        int rows = generator?.Rows ?? 0;
        string askedModel = JsonAccess.String(body, "model") ?? backend.Model;
        int whenUnset = options.Value.RateLimits.CompletionTokensWhenUnset;
        if (route.Kind == EndpointKind.Chat)
        {
            int? measured = budget.MeasureChat(body, backend, rows);
            return new RewritePlan(generator, null, askedModel, TokenEstimate.Chat(body, measured, rows, whenUnset));
        }
        IReadOnlyList<CompletionPrompt> prompts = budget.MeasureCompletions(body, backend, rows);
        return new RewritePlan(generator, prompts, askedModel,
            TokenEstimate.Completions(body, prompts, rows, whenUnset));
    }

    private async Task AdmitAsync(HttpContext http, string tenant, RequestRecord record, TokenReservation reserved)
    {
        record.Reserved = reserved;
        try
        {
            record.Ticket = await limiter.AdmitAsync(http, tenant, reserved.Total);
        }
        catch (ApiException e) when (e.Status == 429)
        {
            record.RateLimited = true;
            throw;
        }
    }

    /// <summary>Computes Z and rewrites the body in place for the backend's dialect; returns the streams its
    /// placeholders stand for, if any.</summary>
    private static async Task<IReadOnlyList<EmbeddedText>?> RewriteAsync(HttpContext http,
        JsonObject body, RequestRoute route, BackendOptions backend, RewritePlan plan, RequestRecord record)
    {
        IBackendDialect dialect = http.RequestServices.GetRequiredKeyedService<IBackendDialect>(backend.Dialect);
        if (route.Kind != dialect.SoftPromptEndpoint)
        {
            throw Errors.DialectMismatch(backend.Dialect, dialect.SoftPromptEndpoint == EndpointKind.Chat
                ? "/v1/chat/completions" : "/v1/completions");
        }

        var request = new DialectRequest(http, body, backend, plan.Generator!, plan.Prompts, record.Timings,
            plan.AskedModel);
        RewriteResult result = await dialect.RewriteAsync(request, http.RequestAborted);
        record.BytesAdded = result.BytesAdded;
        http.Response.RegisterForDispose(new EmbeddedStreams(result.Embedded));
        record.SoftPromptRows = result.SoftPromptRows;
        IHeaderDictionary headers = http.Response.Headers;
        headers["x-lopa-encoder-ms"] = record.Timings.EncoderMs.ToString("F2", CultureInfo.InvariantCulture);
        headers["x-lopa-generator-ms"] = record.Timings.GeneratorMs.ToString("F2", CultureInfo.InvariantCulture);
        headers["x-lopa-soft-prompt-rows"] = result.SoftPromptRows.ToString(CultureInfo.InvariantCulture);
        if (plan.AskedModel != backend.Model) http.Features.Set(new ClientModel(plan.AskedModel));
        if (result.Path is { } path) http.Request.Path = path;
        if (result.Answer is { } answer) http.Features.Set(answer);
        return result.Embedded;
    }

    /// <summary>Disposes a request's embedded streams with the request.</summary>
    private sealed class EmbeddedStreams(IReadOnlyList<EmbeddedText>? streams) : IDisposable
    {
        public void Dispose()
        {
            foreach (EmbeddedText embedded in streams ?? []) embedded.Text.Dispose();
        }
    }

    private async Task<SoftPromptGenerator> FindAdapterAsync(string tenant, string adapterName, BackendOptions backend,
        HttpContext http)
    {
        SoftPromptGenerator? generator;
        try
        {
            generator = await adapters.FindAsync(tenant, adapterName, http.RequestAborted);
        }
        catch (AdapterException e)
        {
            throw new ApiException(422, $"adapter '{adapterName}' cannot be loaded: {e.Message}", "model",
                "adapter_invalid");
        }
        // Unknown, and another tenant's, look the same: 404, never 403.
        if (generator is null) throw Errors.AdapterNotFound(adapterName);
        AdapterConfig config = generator.Adapter.Config;
        if (config.TokenDim != backend.HiddenSize)
        {
            throw new ApiException(422,
                $"adapter '{adapterName}' makes {config.TokenDim}-wide prompts; the backend model '{backend.Model}' has hidden size {backend.HiddenSize}",
                "model", "adapter_incompatible");
        }

        if (config.UsesEncoder && !Core.Encoders.EncoderFactory.IsKnown(config.Encoder!,
            options.Value.ToEncoderOptions()))
        {
            throw new ApiException(422,
                $"adapter '{adapterName}' needs encoder '{config.Encoder}', which this proxy does not have",
                "model", "adapter_incompatible");
        }

        return generator;
    }

    /// <summary>Generation endpoints are always read as JSON (backends parse them so); others when they say
    /// JSON.</summary>
    private static bool HasJsonBody(HttpRequest request, RequestRoute route)
    {
        bool mayHaveBody = request.ContentLength > 0 || request.Headers.TransferEncoding.Count > 0;
        if (!mayHaveBody) return false;
        if (route.Kind != EndpointKind.Other) return true;
        return request.ContentType?.Contains("json", StringComparison.OrdinalIgnoreCase) == true;
    }

    /// <summary>
    /// A generation request names its model, as OpenAI requires (400 otherwise); one that names an adapter names it
    /// on the route's base model — "other-model:adapter" is not this adapter (404, as for any unknown model).
    /// </summary>
    private static void RequireModel(JsonObject body, BackendOptions? backend, string? adapterName)
    {
        if (body["model"] is not JsonValue value || !value.TryGetValue(out string? model) || model.Length == 0)
            throw Errors.MissingModel();
        if (adapterName is null || backend is null) return;
        int colon = model.IndexOf(':');
        string baseModel = colon > 0 ? model[..colon] : model;
        if (baseModel != backend.Model)
            throw Errors.ModelNotFound(model);
    }

    private BackendOptions? BackendOf(HttpContext http)
    {
        string clusterId = http.GetReverseProxyFeature().Cluster.Config.ClusterId;
        return options.Value.Clusters.TryGetValue(clusterId, out BackendOptions? backend) ? backend : null;
    }

    private async Task WriteForwardingErrorAsync(HttpContext http, IForwarderErrorFeature failure)
    {
        bool timeout = failure.Error is ForwarderError.RequestTimedOut;
        log.LogWarning("backend {Error}: {Message}", failure.Error, failure.Exception?.Message);
        await ApiException.WriteAsync(http.Response, timeout ? 504 : 502,
            timeout ? "the model server did not answer in time"
                : $"the model server is unreachable or reset the connection ({failure.Error})",
            "server_error", null, timeout ? "backend_timeout" : "backend_unavailable");
    }

}
