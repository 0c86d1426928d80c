using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Auth;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Requests;
using LoPAProxy.Proxy.SoftPrompts;
using LoPAProxy.Proxy.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Tenancy;

/// <summary>
/// The admin API (/admin/…, admin key) and the tenant adapter API (/v1/adapters…, tenant key) over the store.
/// Tenant calls are scoped to the caller: another tenant's adapters are indistinguishable from missing ones (404).
/// </summary>
public static class TenancyEndpoints
{
    public static void MapTenancy(this IEndpointRouteBuilder app)
    {
        RouteGroupBuilder admin = app.MapGroup("/admin").RequireAuthorization(ApiKeyAuthenticationHandler.AdminPolicy)
            .WithTags("admin");
        admin.MapPost("/tenants", Handler(h => Guard(h, Admin, (s, _) => CreateTenantAsync(h, s))))
            .Describe<CreateTenantRequest, TenantResponse>("Create a tenant", 201);
        admin.MapGet("/tenants", Handler(h => Guard(h, Admin, (s, _) => ListTenantsAsync(h, s))))
            .Describe<ListResponse<TenantResponse>>("List tenants");
        admin.MapPost("/tenants/{tenant}/disable", (HttpContext h, string tenant) => Guard(h, Admin, (s, _) =>
            SetDisabledAsync(h, s, tenant, true)))
            .Describe<TenantResponse>("Disable a tenant: its keys stop working at once");
        admin.MapPost("/tenants/{tenant}/enable", (HttpContext h, string tenant) => Guard(h, Admin, (s, _) =>
            SetDisabledAsync(h, s, tenant, false)))
            .Describe<TenantResponse>("Enable a tenant again");
        admin.MapPost("/tenants/{tenant}/keys", (HttpContext h, string tenant) => Guard(h, Admin, (s, _) =>
            IssueKeyAsync(h, s, tenant)))
            .Describe<IssuedKeyResponse>("Issue a key (shown once; only its hash is stored)", 201);
        admin.MapGet("/tenants/{tenant}/keys", (HttpContext h, string tenant) => Guard(h, Admin, (s, _) =>
            ListKeysAsync(h, s, tenant)))
            .Describe<ListResponse<KeyResponse>>("List a tenant's keys (ids, never the keys)");
        admin.MapDelete("/tenants/{tenant}/keys/{id}", (HttpContext h, string tenant, string id) => Guard(h, Admin,
            (s, _) => RevokeKeyAsync(h, s, tenant, id)))
            .Describe("Revoke a key", 204);

        RouteGroupBuilder adapters = app.MapGroup("/v1/adapters").RequireAuthorization(ApiKeyAuthenticationHandler.TenantPolicy)
            .WithTags("adapters");
        adapters.MapPost("", Handler(h => Guard(h, Tenant, (s, t) => Upload(h, s, t!))))
            .Describe<AdapterEnvelope>("Upload an adapter version (multipart: name, version, activate, and the adapter's files)", 201);
        adapters.MapGet("", Handler(h => Guard(h, Tenant, (s, t) => ListAdaptersAsync(h, s, t!))))
            .Describe<ListResponse<AdapterResponse>>("List the caller's adapters, every version");
        adapters.MapGet("/{reference}", (HttpContext h, string reference) => Guard(h, Tenant, (s, t) =>
            GetAdapterAsync(h, s, t!, reference)))
            .Describe<AdapterEnvelope>("One adapter: name (the active version) or name@version, with its config");
        adapters.MapDelete("/{reference}", (HttpContext h, string reference) => Guard(h, Tenant, (s, t) =>
            DeleteAdapterAsync(h, s, t!, reference)))
            .Describe("Delete a version (name@version) or every version of a name", 204);
        adapters.MapPost("/{name}/activate", (HttpContext h, string name) => Guard(h, Tenant, (s, t) =>
            ActivateAsync(h, s, t!, name)))
            .Describe<ActivateRequest, ActivatedResponse>("Make a version the one the name resolves to");

    }

    /// <summary>A handler as a Delegate (not a RequestDelegate), so it is described in the OpenAPI document.</summary>
    internal static Delegate Handler(Func<HttpContext, Task> handler) => handler;

    internal static IResult Json<T>(T value, int status = 200) =>
        Results.Json(value,
            (System.Text.Json.Serialization.Metadata.JsonTypeInfo<T>)TenancyJsonContext.Default.GetTypeInfo(typeof(T))!,
            statusCode: status);

    private static async Task<IResult> CreateTenantAsync(HttpContext h, ITenancyStore s)
    {
        using JsonDocument doc = await JsonBodies.ReadDocumentAsync(h.Request, SmallBodyBytes, h.RequestAborted);
        string name = JsonBodies.RequiredString(doc, "name");
        if (!Names.IsValid(name)) throw ApiException.BadRequest(Names.Rule("tenant names"), "name");
        await s.CreateTenantAsync(name, h.RequestAborted);
        Log(h).LogInformation("tenant created {Tenant}", name);
        return Json(new TenantResponse(name, false, DateTimeOffset.UtcNow), 201);
    }

    private static async Task<IResult> ListTenantsAsync(HttpContext h, ITenancyStore s) =>
        Json(new ListResponse<TenantResponse>((await s.ListTenantsAsync(h.RequestAborted)).Select(TenantResponse.From).ToList()));

    private static async Task<IResult> SetDisabledAsync(HttpContext h, ITenancyStore s, string tenant, bool disabled)
    {
        await s.SetTenantDisabledAsync(tenant, disabled, h.RequestAborted);
        return Json(new TenantResponse(tenant, disabled, null));
    }

    private static async Task<IResult> IssueKeyAsync(HttpContext h, ITenancyStore s, string tenant)
    {
        string key = "lopa-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(24)).ToLowerInvariant();
        KeyRecord record = await s.AddKeyAsync(tenant, TenantKeys.Hash(key), h.RequestAborted);
        Log(h).LogInformation("key issued {KeyId} for tenant {Tenant}", record.Id,
            tenant); // the key itself is never logged
        return Json(new IssuedKeyResponse(record.Id, tenant, key, "shown once; only its hash is stored"), 201);
    }

    private static async Task<IResult> ListKeysAsync(HttpContext h, ITenancyStore s, string tenant)
    {
        if (await s.GetTenantAsync(tenant, h.RequestAborted) is null)
            throw new StoreNotFoundException($"tenant '{tenant}' does not exist");
        IReadOnlyList<KeyRecord> keys = await s.ListKeysAsync(tenant, h.RequestAborted);
        return Json(new ListResponse<KeyResponse>(keys.Select(KeyResponse.From).ToList()));
    }

    private static async Task<IResult> RevokeKeyAsync(HttpContext h, ITenancyStore s, string tenant, string id) =>
        await s.RevokeKeyAsync(tenant, id, h.RequestAborted)
            ? Results.NoContent()
            : throw new ApiException(404, $"no key {id} for tenant {tenant}", null, "key_not_found");

    private static async Task<IResult> ListAdaptersAsync(HttpContext h, ITenancyStore s, string tenant) =>
        Json(new ListResponse<AdapterResponse>((await s.ListAdaptersAsync(tenant,
            h.RequestAborted)).Select(AdapterResponse.From).ToList()));

    private static async Task<IResult> GetAdapterAsync(HttpContext h, ITenancyStore s, string tenant, string reference)
    {
        var (name, version) = Split(reference);
        StoredAdapter a = await s.GetAdapterAsync(tenant, name, version, h.RequestAborted) ?? throw NotFound(reference);
        using JsonDocument config = JsonDocument.Parse(a.ConfigJson);
        return Json(new AdapterEnvelope(AdapterResponse.From(a.Info), config.RootElement.Clone()));
    }

    private static async Task<IResult> DeleteAdapterAsync(HttpContext h, ITenancyStore s, string tenant,
        string reference)
    {
        var (name, version) = Split(reference);
        if (!await s.DeleteAdapterAsync(tenant, name, version, h.RequestAborted)) throw NotFound(reference);
        Log(h).LogInformation("adapter deleted {Tenant} {Adapter} {Version}", tenant, name, version ?? "(all)");
        return Results.NoContent();
    }

    private static async Task<IResult> ActivateAsync(HttpContext h, ITenancyStore s, string tenant, string name)
    {
        using JsonDocument doc = await JsonBodies.ReadDocumentAsync(h.Request, SmallBodyBytes, h.RequestAborted);
        string version = JsonBodies.RequiredString(doc, "version");
        if (!await s.ActivateAsync(tenant, name, version, h.RequestAborted)) throw NotFound($"{name}@{version}");
        Log(h).LogInformation("adapter activated {Tenant} {Adapter} {Version}", tenant, name, version);
        return Json(new ActivatedResponse(name, version));
    }

    /// <summary>OpenAPI metadata: summary, success type and status, and the OpenAI error shape for failures.</summary>
    internal static RouteHandlerBuilder Describe<TResponse>(this RouteHandlerBuilder route, string summary,
        int status = 200) =>
        route.Describe(summary, status).Produces<TResponse>(status);

    internal static RouteHandlerBuilder Describe<TRequest, TResponse>(this RouteHandlerBuilder route, string summary,
        int status = 200)
        where TRequest : notnull =>
        route.Describe<TResponse>(summary, status).Accepts<TRequest>("application/json");

    internal static RouteHandlerBuilder Describe(this RouteHandlerBuilder route, string summary, int status) =>
        route.WithSummary(summary).Produces(status)
            .Produces<ErrorResponse>(400).Produces<ErrorResponse>(401).Produces<ErrorResponse>(404);

    /// <summary>The admin and activation bodies are a few fields.</summary>
    internal const long SmallBodyBytes = 64 * 1024;


    internal enum Caller { Admin, Tenant }
    internal const Caller Admin = Caller.Admin, Tenant = Caller.Tenant;

    private static ILogger Log(HttpContext h) =>
        h.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("LoPAProxy.Tenancy");

    private static ApiException NotFound(string reference) => Errors.AdapterNotFound(reference, "name");

    private static (string Name, string? Version) Split(string reference)
    {
        if (!AdapterReference.TryParse(reference, out AdapterReference parsed)) throw NotFound(reference);
        return (parsed.Name, parsed.Version);
    }


    /// <summary>Finds the caller's tenant (tenant routes) and the store, runs the action; failures reach the
    /// error boundary (<see cref="ErrorBoundary"/>, with <see cref="StoreErrors"/>).</summary>
    internal static async Task Guard(HttpContext h, Caller caller, Func<ITenancyStore, string?, Task<IResult>> action)
    {
        ITenancyStore store = h.RequestServices.GetRequiredService<ITenancyStore>();
        // The route's policy has already admitted the caller; the tenant comes from the key's identity.
        string? tenant = caller == Caller.Tenant
            ? ApiKeyAuthentication.TenantOf(h.User) ?? throw Errors.InvalidApiKey()
            : null;
        IResult result = await action(store, tenant);
        await result.ExecuteAsync(h);
    }

    /// <summary>
    /// Uploads have their own body limit (Quotas:MaxUploadBytes), not the OpenAI routes' Limits:MaxBodyBytes that
    /// Kestrel applies by default; the form reader's own limits are raised to the same figure.
    /// </summary>
    internal static async Task<IFormCollection> ReadUploadFormAsync(HttpContext h, long maxUploadBytes)
    {
        await BodyLimit.ApplyAsync(h, maxUploadBytes, "the upload");
        var limits = new FormOptions
        {
            MultipartBodyLengthLimit = maxUploadBytes, ValueCountLimit = 64, KeyLengthLimit = 256, MultipartHeadersCountLimit = 16,
        };
        h.Features.Set<IFormFeature>(new FormFeature(h.Request, limits));
        return await h.Request.ReadFormAsync(h.RequestAborted);
    }

    /// <summary>An uploaded file's bytes; 413 when it is over <paramref name="maxBytes"/>.</summary>
    internal static async Task<byte[]> ReadFormFileAsync(IFormFile file, long maxBytes, CancellationToken cancel)
    {
        if (file.Length > maxBytes)
        {
            throw new ApiException(413, $"'{file.FileName}' is over the {maxBytes}-byte limit", "file",
                "body_too_large");
        }
        using var buffer = new MemoryStream((int)file.Length);
        await file.CopyToAsync(buffer, cancel);
        return buffer.ToArray();
    }

    /// <summary>
    /// multipart/form-data: fields name, version, activate (default true); files adapter_config.json +
    /// adapter_model.safetensors, or one .safetensors carrying its config in __metadata__. Validated like a load,
    /// checked against the backends' hidden sizes and the encoders, and against the tenant's quotas, then stored
    /// atomically (a rejected or interrupted upload stores nothing).
    /// </summary>
    private static async Task<IResult> Upload(HttpContext h, ITenancyStore store, string tenant)
    {
        LoPAOptions o = h.RequestServices.GetRequiredService<IOptions<LoPAOptions>>().Value;
        if (!h.Request.HasFormContentType)
        {
            throw ApiException.BadRequest("upload as multipart/form-data", null,
            "invalid_multipart");
        }

        IFormCollection form = await ReadUploadFormAsync(h, o.Quotas.MaxUploadBytes);
        string name = form["name"].FirstOrDefault() ?? throw ApiException.BadRequest("the 'name' field is required",
            "name");
        string version = form["version"].FirstOrDefault()
            ?? throw ApiException.BadRequest("the 'version' field is required (versions are immutable)", "version");
        if (!Names.IsValid(name)
            || name.Contains('@'))
        {
            throw ApiException.BadRequest(Names.Rule("adapter names"), "name");
        }

        if (!Names.IsValid(version)) throw ApiException.BadRequest(Names.Rule("versions"), "version");
        bool activate = form["activate"].FirstOrDefault() switch
        {
            null => true,
            "true" => true,
            "false" => false,
            string other => throw ApiException.BadRequest($"'activate' is true or false, not '{other}'", "activate"),
        };
        async Task<byte[]?> Read(Func<IFormFile, bool> match) => form.Files.FirstOrDefault(match) is { } f
            ? await ReadFormFileAsync(f, o.Quotas.MaxUploadBytes, h.RequestAborted)
            : null;
        byte[]? configBytes = await Read(f => f.FileName == LopaAdapter.ConfigFile);
        byte[]? weights = await Read(f => f.FileName.EndsWith(".safetensors", StringComparison.Ordinal));
        if (weights is null) throw ApiException.BadRequest("upload adapter_model.safetensors (with adapter_config.json) or one .safetensors carrying its config", "file", "missing_file");
        LopaAdapter adapter = configBytes is null
            ? LopaAdapter.FromSingleFile(weights, $"{name}@{version}")
            : LopaAdapter.FromParts(Encoding.UTF8.GetString(configBytes), weights, $"{name}@{version}");
        AdapterConfig c = adapter.Config;
        if (!o.Clusters.Values.Any(b => b.HiddenSize == c.TokenDim))
            throw new ApiException(422, $"the adapter makes {c.TokenDim}-wide prompts; no backend here has that hidden size ({string.Join(", ", o.Clusters.Values.Select(b => b.HiddenSize).Distinct())})", "file", "adapter_incompatible");
        EncoderOptions encoders = o.ToEncoderOptions();
        if (c.UsesEncoder && !EncoderFactory.IsKnown(c.Encoder!, encoders))
            throw new ApiException(422, $"the adapter needs encoder '{c.Encoder}', which this proxy does not have ({string.Join(", ", EncoderFactory.Names(encoders))})", "file", "adapter_incompatible");
        // Loads the encoder and compares widths: an adapter this proxy could never serve is refused now, not per
        // request.
        if (c.UsesEncoder) h.RequestServices.GetRequiredService<SoftPromptService>().EncoderFor(c);
        var quota = new AdapterQuota(o.Quotas.MaxAdaptersPerTenant, o.Quotas.MaxBytesPerTenant);
        AdapterVersionInfo info = await store.PutAdapterAsync(tenant, name, version, c.ToJson(), weights,
            c.TrainableParameters,
            activate, quota, h.RequestAborted);
        Log(h).LogInformation("adapter uploaded {Tenant} {Adapter} {Version} sha256={Sha256} size={Size} active={Active}", tenant, name, version, info.Sha256, info.SizeBytes, info.Active);
        return Json(new AdapterEnvelope(AdapterResponse.From(info)), 201);
    }
}
