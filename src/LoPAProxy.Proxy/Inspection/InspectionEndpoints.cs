using System.Text.Json;
using System.Text.Json.Serialization;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Generation;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Auth;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Requests;
using LoPAProxy.Proxy.Tenancy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using static LoPAProxy.Proxy.Tenancy.TenancyEndpoints;

namespace LoPAProxy.Proxy.Inspection;

/// <summary>POST /v1/adapters/{reference}/soft-prompt body.</summary>
public sealed record InspectRequest(
    [property: JsonPropertyName("text")] string? Text,
    [property: JsonPropertyName("texts")] IReadOnlyList<string>? Texts);

/// <summary>
/// POST /v1/adapters/{reference}/soft-prompt (tenant key): the numbers behind the console's pictures of what an
/// adapter does — Z_S, one instance's gate and Z with per-row norms and offsets, and a PCA of many instances' Z.
/// Each call is admitted by the tenant's limits like a request (it runs the encoder).
/// </summary>
public static class InspectionEndpoints
{
    private const long MaxBodyBytes = 1 << 20;

    public static void MapInspection(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/v1/adapters").RequireAuthorization(ApiKeyAuthenticationHandler.TenantPolicy)
            .WithTags("adapters")
            .MapPost("/{reference}/soft-prompt", (HttpContext h, string reference) => Guard(h, Caller.Tenant,
                (_, tenant) => InspectAsync(h, tenant!, reference)))
            .Describe<InspectRequest, SoftPromptView>(
                "Z_S, an instance's gate and Z, and a PCA of many instances' Z for one adapter");
    }

    private static async Task<IResult> InspectAsync(HttpContext h, string tenant, string reference)
    {
        using JsonDocument doc = await JsonBodies.ReadDocumentAsync(h.Request, MaxBodyBytes, h.RequestAborted);
        InspectRequest request = doc.RootElement.Deserialize(InspectionJson.Default.InspectRequest)
            ?? throw ApiException.BadRequest("the body is a JSON object", null);
        SoftPromptGenerator generator = await FindAsync(h, tenant, reference);
        // It runs the tenant's encoder, so it counts as one of the tenant's requests (no model tokens).
        RateLimiter limiter = h.RequestServices.GetRequiredService<RateLimiter>();
        RateTicket? ticket = await limiter.AdmitAsync(h, tenant, 0);
        try
        {
            SoftPromptView view = await h.RequestServices.GetRequiredService<SoftPromptInspector>()
                .InspectAsync(generator, request.Text, request.Texts ?? [], h.RequestAborted);
            return Results.Json(view, InspectionJson.Default.SoftPromptView);
        }
        finally
        {
            if (ticket is not null) await limiter.SettleAsync(ticket, 0);
        }
    }

    private static async Task<SoftPromptGenerator> FindAsync(HttpContext h, string tenant, string reference)
    {
        AdapterCatalog catalog = h.RequestServices.GetRequiredService<AdapterCatalog>();
        try
        {
            return await catalog.FindAsync(tenant, reference, h.RequestAborted)
                ?? throw Errors.AdapterNotFound(reference, "reference");
        }
        catch (AdapterException e)
        {
            throw new ApiException(422, $"adapter '{reference}' cannot be loaded: {e.Message}", "reference",
                "adapter_invalid");
        }
    }
}

/// <summary>Source-generated serialisation for the inspection API.</summary>
[JsonSerializable(typeof(InspectRequest))]
[JsonSerializable(typeof(SoftPromptView))]
public sealed partial class InspectionJson : JsonSerializerContext;
