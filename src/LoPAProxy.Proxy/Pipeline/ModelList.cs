using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Auth;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Requests;
using LoPAProxy.Proxy.Tenancy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Pipeline;

/// <summary>
/// GET /v1/models for a tenant: the backends' base models and every "base:adapter" the tenant may call (its own
/// adapters only, owned_by = the tenant), in OpenAI's list shape — what SDKs and UIs use to offer model choices.
/// GET /v1/models/{id} answers one of them (client.models.retrieve), and 404 model_not_found for any other id —
/// another tenant's adapter included, in the same words.
/// </summary>
public static class ModelList
{
    private sealed record ModelEntry(string Id, long Created, string Owner);

    public static bool Handles(HttpRequest request, RequestRoute route) =>
        HttpMethods.IsGet(request.Method) && route.CanonicalPath.EndsWith("/v1/models",
            StringComparison.OrdinalIgnoreCase);

    public static async Task WriteAsync(HttpContext http, string tenant, LoPAOptions options, AdapterCatalog adapters)
    {
        IReadOnlyList<ModelEntry> entries = await EntriesAsync(tenant, options, adapters, http.RequestAborted);
        await http.Response.WriteAsJsonAsync(new { @object = "list", data = entries.Select(Shape) },
            http.RequestAborted);
    }

    public static void MapModelLookup(this IEndpointRouteBuilder app) =>
        app.MapGet("/v1/models/{**id}", RetrieveAsync).RequireAuthorization(ApiKeyAuthenticationHandler.TenantPolicy)
            .WithTags("models").WithSummary("One model the caller may use: a base model or base:adapter");

    private static async Task RetrieveAsync(HttpContext http, string id)
    {
        string tenant = ApiKeyAuthentication.TenantOf(http.User)!;
        LoPAOptions options = http.RequestServices.GetRequiredService<IOptions<LoPAOptions>>().Value;
        AdapterCatalog adapters = http.RequestServices.GetRequiredService<AdapterCatalog>();
        IReadOnlyList<ModelEntry> entries = await EntriesAsync(tenant, options, adapters, http.RequestAborted);
        ModelEntry? entry = entries.FirstOrDefault(e => e.Id == id);
        if (entry is null) throw Errors.ModelNotFound(id);
        await http.Response.WriteAsJsonAsync(Shape(entry), http.RequestAborted);
    }

    private static async Task<IReadOnlyList<ModelEntry>> EntriesAsync(string tenant, LoPAOptions options,
        AdapterCatalog adapters, CancellationToken cancel)
    {
        string[] bases = options.Clusters.Values.Select(c => c.Model)
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        var owned = await adapters.ListAsync(tenant, cancel);
        var entries = bases.Select(b => new ModelEntry(b, 0, "lopaproxy")).ToList();
        foreach (string b in bases)
        {
            entries.AddRange(owned.Select(a => new ModelEntry($"{b}:{a.Reference}", a.Created.ToUnixTimeSeconds(),
                tenant)));
        }

        return entries;
    }

    private static object Shape(ModelEntry e) => new
    {
        id = e.Id, @object = "model", created = e.Created,
        owned_by = e.Owner
    };
}
