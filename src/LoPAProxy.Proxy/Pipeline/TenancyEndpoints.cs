using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.ModelServer.OpenAi;
using LoPAProxy.Proxy.Auth;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Dialects;
using Microsoft.AspNetCore.Http.Features;
using LoPAProxy.Proxy.Store;
using LoPAProxy.Proxy.Tenancy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Pipeline;

/// <summary>
/// The admin API (/admin/…, admin key) and the tenant adapter API (/v1/adapters…, tenant key) over the store.
/// Tenant calls are scoped to the caller: another tenant's adapters are indistinguishable from missing ones (404).
/// </summary>
public static class TenancyEndpoints
{
    public static void MapTenancy(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/admin").RequireAuthorization(ApiKeyAuthenticationHandler.AdminPolicy);
        admin.MapPost("/tenants", (HttpContext h) => Guard(h, Admin, async (s, _) =>
        {
            using JsonDocument doc = await JsonBodies.ReadDocumentAsync(h.Request, SmallBodyBytes, h.RequestAborted);
            string name = JsonBodies.RequiredString(doc, "name");
            if (!Names.IsValid(name)) throw ApiException.BadRequest("tenant names are 1–64 of [A-Za-z0-9._-]", "name");
            await s.CreateTenantAsync(name, h.RequestAborted);
            Log(h).LogInformation("tenant created {Tenant}", name);
            return Results.Json(new { name }, statusCode: 201);
        }));
        admin.MapGet("/tenants", (HttpContext h) => Guard(h, Admin, async (s, _) => Results.Json(new { data = await s.ListTenantsAsync(h.RequestAborted) })));
        admin.MapPost("/tenants/{tenant}/disable", (HttpContext h, string tenant) => Guard(h, Admin, async (s, _) => { await s.SetTenantDisabledAsync(tenant, true, h.RequestAborted); return Results.Json(new { name = tenant, disabled = true }); }));
        admin.MapPost("/tenants/{tenant}/enable", (HttpContext h, string tenant) => Guard(h, Admin, async (s, _) => { await s.SetTenantDisabledAsync(tenant, false, h.RequestAborted); return Results.Json(new { name = tenant, disabled = false }); }));
        admin.MapPost("/tenants/{tenant}/keys", (HttpContext h, string tenant) => Guard(h, Admin, async (s, _) =>
        {
            string key = "lopa-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(24)).ToLowerInvariant();
            KeyRecord record = await s.AddKeyAsync(tenant, TenantKeys.Hash(key), h.RequestAborted);
            Log(h).LogInformation("key issued {KeyId} for tenant {Tenant}", record.Id, tenant); // the key itself is never logged
            return Results.Json(new { id = record.Id, tenant, key, note = "shown once; only its hash is stored" }, statusCode: 201);
        }));
        admin.MapGet("/tenants/{tenant}/keys", (HttpContext h, string tenant) => Guard(h, Admin, async (s, _) => Results.Json(new { data = await s.ListKeysAsync(tenant, h.RequestAborted) })));
        admin.MapDelete("/tenants/{tenant}/keys/{id}", (HttpContext h, string tenant, string id) => Guard(h, Admin, async (s, _) =>
            await s.RevokeKeyAsync(tenant, id, h.RequestAborted) ? Results.NoContent() : throw new ApiException(404, $"no key {id} for tenant {tenant}", null, "key_not_found")));

        var adapters = app.MapGroup("/v1/adapters").RequireAuthorization(ApiKeyAuthenticationHandler.TenantPolicy);
        adapters.MapPost("", (HttpContext h) => Guard(h, Tenant, (s, t) => Upload(h, s, t!)));
        adapters.MapGet("", (HttpContext h) => Guard(h, Tenant, async (s, t) => Results.Json(new { data = (await s.ListAdaptersAsync(t!, h.RequestAborted)).Select(Describe) })));
        adapters.MapGet("/{reference}", (HttpContext h, string reference) => Guard(h, Tenant, async (s, t) =>
        {
            var (name, version) = Split(reference);
            StoredAdapter a = await s.GetAdapterAsync(t!, name, version, h.RequestAborted) ?? throw NotFound(reference);
            return Results.Json(new { adapter = Describe(a.Info), config = JsonDocument.Parse(a.ConfigJson).RootElement });
        }));
        adapters.MapDelete("/{reference}", (HttpContext h, string reference) => Guard(h, Tenant, async (s, t) =>
        {
            var (name, version) = Split(reference);
            if (!await s.DeleteAdapterAsync(t!, name, version, h.RequestAborted)) throw NotFound(reference);
            Log(h).LogInformation("adapter deleted {Tenant} {Adapter} {Version}", t, name, version ?? "(all)");
            return Results.NoContent();
        }));
        adapters.MapPost("/{name}/activate", (HttpContext h, string name) => Guard(h, Tenant, async (s, t) =>
        {
            using JsonDocument doc = await JsonBodies.ReadDocumentAsync(h.Request, SmallBodyBytes, h.RequestAborted);
            string version = JsonBodies.RequiredString(doc, "version");
            if (!await s.ActivateAsync(t!, name, version, h.RequestAborted)) throw NotFound($"{name}@{version}");
            Log(h).LogInformation("adapter activated {Tenant} {Adapter} {Version}", t, name, version);
            return Results.Json(new { name, active = version });
        }));
    }

    /// <summary>The admin and activation bodies are a few fields.</summary>
    private const long SmallBodyBytes = 64 * 1024;


    private enum Caller { Admin, Tenant }
    private const Caller Admin = Caller.Admin, Tenant = Caller.Tenant;

    private static ILogger Log(HttpContext h) => h.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("LoPAProxy.Tenancy");

    private static ApiException NotFound(string reference) => new(404, $"The adapter `{reference}` does not exist.", "name", "adapter_not_found");

    private static (string Name, string? Version) Split(string reference)
    {
        int at = reference.IndexOf('@');
        var (name, version) = at < 0 ? (reference, (string?)null) : (reference[..at], reference[(at + 1)..]);
        if (!Names.IsValid(name) || (version != null && !Names.IsValid(version))) throw NotFound(reference);
        return (name, version);
    }

    private static object Describe(AdapterVersionInfo a) => new
    {
        name = a.Name, version = a.Version, id = $"{a.Name}@{a.Version}", active = a.Active, sha256 = a.Sha256,
        parameters = a.Parameters, size_bytes = a.SizeBytes, created = a.Created,
    };

    /// <summary>Authenticates the caller, runs the action, maps store and validation failures to OpenAI error JSON.</summary>
    private static async Task Guard(HttpContext h, Caller caller, Func<IAdapterStore, string?, Task<IResult>> action)
    {
        try
        {
            IAdapterStore store = h.RequestServices.GetService<IAdapterStore>() ?? throw new ApiException(404, "this proxy keeps adapters in folders; the adapter API needs LoPA:Store:Kind sqlite or postgres", null, "store_not_configured");
            // The route's policy has already admitted the caller; the tenant comes from the key's identity.
            string? tenant = caller == Caller.Tenant
                ? ApiKeyAuthentication.TenantOf(h.User) ?? throw new ApiException(401, "a tenant key is required", null, "invalid_api_key")
                : null;
            IResult result = await action(store, tenant);
            await result.ExecuteAsync(h);
        }
        catch (ApiException e) when (!h.Response.HasStarted) { await e.WriteAsync(h.Response); }
        catch (StoreNotFoundException e) when (!h.Response.HasStarted) { await ApiException.WriteAsync(h.Response, 404, e.Message, "not_found_error", null, "not_found"); }
        catch (StoreConflictException e) when (!h.Response.HasStarted) { await ApiException.WriteAsync(h.Response, 409, e.Message, "invalid_request_error", null, "conflict"); }
        catch (StoreQuotaException e) when (!h.Response.HasStarted) { await ApiException.WriteAsync(h.Response, 429, e.Message, "invalid_request_error", null, "quota_exceeded"); }
        catch (AdapterException e) when (!h.Response.HasStarted) { await ApiException.WriteAsync(h.Response, 400, e.Message, "invalid_request_error", "file", "invalid_adapter"); }
        catch (JsonException e) when (!h.Response.HasStarted) { await ApiException.WriteAsync(h.Response, 400, $"the body is not valid JSON: {e.Message}", "invalid_request_error", null, "invalid_json"); }
        catch (BadHttpRequestException e) when (!h.Response.HasStarted) { await ApiException.WriteAsync(h.Response, e.StatusCode, e.Message, "invalid_request_error", null, e.StatusCode == 413 ? "body_too_large" : "bad_request"); }
        catch (Exception e) when (!h.Response.HasStarted && IsMalformedForm(e))
        {
            await ApiException.WriteAsync(h.Response, 400, $"malformed multipart body: {e.Message}", "invalid_request_error", null, "invalid_multipart");
        }
    }

    /// <summary>What ASP.NET Core's form reader throws for a body that is not well-formed multipart.</summary>
    private static bool IsMalformedForm(Exception e) =>
        e is InvalidDataException or InvalidOperationException { Source: "Microsoft.AspNetCore.WebUtilities" }
        || (e is IOException && e.Message.Contains("Unexpected end of", StringComparison.Ordinal));

    /// <summary>
    /// Uploads have their own body limit (Quotas:MaxUploadBytes), not the OpenAI routes' Limits:MaxBodyBytes that
    /// Kestrel applies by default; the form reader's own limits are raised to the same figure.
    /// </summary>
    private static async Task<IFormCollection> ReadUploadFormAsync(HttpContext h, long maxUploadBytes)
    {
        await BodyLimit.ApplyAsync(h, maxUploadBytes, "the upload");
        var limits = new FormOptions
        {
            MultipartBodyLengthLimit = maxUploadBytes, ValueCountLimit = 64, KeyLengthLimit = 256, MultipartHeadersCountLimit = 16,
        };
        h.Features.Set<IFormFeature>(new FormFeature(h.Request, limits));
        return await h.Request.ReadFormAsync(h.RequestAborted);
    }

    /// <summary>
    /// multipart/form-data: fields name, version, activate (default true); files adapter_config.json +
    /// adapter_model.safetensors, or one .safetensors carrying its config in __metadata__. Validated like a load,
    /// checked against the backends' hidden sizes and the encoders, and against the tenant's quotas, then stored
    /// atomically (a rejected or interrupted upload stores nothing).
    /// </summary>
    private static async Task<IResult> Upload(HttpContext h, IAdapterStore store, string tenant)
    {
        LoPAOptions o = h.RequestServices.GetRequiredService<IOptions<LoPAOptions>>().Value;
        if (!h.Request.HasFormContentType) throw ApiException.BadRequest("upload as multipart/form-data", null, "invalid_multipart");
        IFormCollection form = await ReadUploadFormAsync(h, o.Quotas.MaxUploadBytes);
        string name = form["name"].FirstOrDefault() ?? throw ApiException.BadRequest("the 'name' field is required", "name");
        string version = form["version"].FirstOrDefault() ?? throw ApiException.BadRequest("the 'version' field is required (versions are immutable)", "version");
        if (!Names.IsValid(name) || name.Contains('@')) throw ApiException.BadRequest("adapter names are 1–64 of [A-Za-z0-9._-]", "name");
        if (!Names.IsValid(version)) throw ApiException.BadRequest("versions are 1–64 of [A-Za-z0-9._-]", "version");
        bool activate = !string.Equals(form["activate"].FirstOrDefault(), "false", StringComparison.OrdinalIgnoreCase);
        async Task<byte[]?> Read(Func<IFormFile, bool> match)
        {
            IFormFile? f = form.Files.FirstOrDefault(match);
            if (f is null) return null;
            if (f.Length > o.Quotas.MaxUploadBytes) throw new ApiException(413, $"'{f.FileName}' is over the {o.Quotas.MaxUploadBytes}-byte limit", "file", "body_too_large");
            using var ms = new MemoryStream();
            await f.CopyToAsync(ms, h.RequestAborted);
            return ms.ToArray();
        }
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
        // Loads the encoder and compares widths: an adapter this proxy could never serve is refused now, not per request.
        if (c.UsesEncoder) h.RequestServices.GetRequiredService<SoftPromptService>().EncoderFor(c);
        var quota = new AdapterQuota(o.Quotas.MaxAdaptersPerTenant, o.Quotas.MaxBytesPerTenant);
        AdapterVersionInfo info = await store.PutAdapterAsync(tenant, name, version, c.ToJson(), weights, c.TrainableParameters,
            activate, quota, h.RequestAborted);
        Log(h).LogInformation("adapter uploaded {Tenant} {Adapter} {Version} sha256={Sha256} size={Size} active={Active}", tenant, name, version, info.Sha256, info.SizeBytes, info.Active);
        return Results.Json(new { adapter = Describe(info) }, statusCode: 201);
    }
}
