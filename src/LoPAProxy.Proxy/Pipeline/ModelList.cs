using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Tenancy;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.Proxy.Pipeline;

/// <summary>
/// GET /v1/models for a tenant: the backends' base models and every "base:adapter" the tenant may call (its own
/// adapters only, owned_by = the tenant), in OpenAI's list shape — what SDKs and UIs use to offer model choices.
/// </summary>
public static class ModelList
{
    public static bool Handles(HttpRequest request, RequestRoute route) =>
        HttpMethods.IsGet(request.Method) && route.CanonicalPath.EndsWith("/v1/models",
            StringComparison.OrdinalIgnoreCase);

    public static async Task WriteAsync(HttpContext http, string tenant, LoPAOptions options, AdapterCatalog adapters)
    {
        string[] bases = options.Clusters.Values.Select(c => c.Model)
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        var owned = await adapters.ListAsync(tenant, http.RequestAborted);
        var data = bases.Select(b => Entry(b, 0, "lopaproxy")).ToList();
        foreach (string b in bases)
            data.AddRange(owned.Select(a => Entry($"{b}:{a.Reference}", a.Created.ToUnixTimeSeconds(), tenant)));
        await http.Response.WriteAsJsonAsync(new { @object = "list", data }, http.RequestAborted);
    }

    private static object Entry(string id, long created, string owner) =>
        new { id, @object = "model", created, owned_by = owner };
}
