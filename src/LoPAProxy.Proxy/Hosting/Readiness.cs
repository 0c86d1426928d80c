using System.Text.Json.Serialization;
using LoPAProxy.Proxy.Auth;
using LoPAProxy.Proxy.SoftPrompts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Yarp.ReverseProxy;

namespace LoPAProxy.Proxy.Hosting;

/// <summary>One loaded encoder: where it runs and how its micro-batching went.</summary>
public sealed record EncoderStatus(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("device")] string Device,
    [property: JsonPropertyName("batches")] long Batches,
    [property: JsonPropertyName("instances")] long Instances);

/// <summary>GET /admin/status: backends' readiness and the encoders.</summary>
public sealed record StatusResponse(
    [property: JsonPropertyName("ready")] bool Ready,
    [property: JsonPropertyName("backends")] Dictionary<string, bool> Backends,
    [property: JsonPropertyName("encoders")] IReadOnlyList<EncoderStatus> Encoders);

/// <summary>
/// Readiness: every configured encoder loaded and every backend destination answering /v1/models below 500 (3 s
/// timeout); the store's state is reported beside them. GET /readyz (open, for probes: 200 or 503) and GET
/// /admin/status (admin key: the same plus where each
/// encoder runs and its batch statistics).
/// </summary>
public static class Readiness
{
    public static void MapReadiness(this IEndpointRouteBuilder app)
    {
        app.MapGet("/readyz", ReadyAsync);
        app.MapGet("/admin/status", StatusAsync).RequireAuthorization(ApiKeyAuthenticationHandler.AdminPolicy)
            .WithTags("admin").WithSummary("Backends' readiness, encoders' devices and batch statistics")
            .Produces<StatusResponse>();
    }

    /// <summary>
    /// The store's state is reported but does not decide readiness: it is shared by every replica, so failing
    /// readiness on it would take them all out of service at once — while it is down they still serve every request
    /// whose key and adapter they have cached.
    /// </summary>
    private static async Task<IResult> ReadyAsync(EncoderPool encoders, IProxyStateLookup state,
        IHttpClientFactory http, Store.ITenancyStore store, Store.StoreOutage outage)
    {
        Task<bool> storeUp = StoreAnswersAsync(store, outage);
        Dictionary<string, bool> backends = await BackendsAsync(state, http);
        bool ready = encoders.AllLoaded && backends.Count > 0 && backends.Values.All(v => v);
        return Results.Json(new { ready, encoders = encoders.AllLoaded, backends, store = await storeUp },
            statusCode: ready ? 200 : 503);
    }

    private static async Task<bool> StoreAnswersAsync(Store.ITenancyStore store, Store.StoreOutage outage)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        try
        {
            await store.PingAsync(timeout.Token);
            outage.Recovered();
            return true;
        }
        catch (Exception e) when (Store.StoreOutage.Is(e) || e is OperationCanceledException)
        {
            return false;
        }
    }

    private static async Task<IResult> StatusAsync(EncoderPool encoders, InstanceVectors vectors,
        IProxyStateLookup state, IHttpClientFactory http)
    {
        Dictionary<string, bool> backends = await BackendsAsync(state, http);
        IReadOnlyDictionary<string, (long Batches, long Instances)> batching = vectors.BatchStatistics;
        List<EncoderStatus> loaded = encoders.Devices.OrderBy(e => e.Key, StringComparer.Ordinal)
            .Select(e => new EncoderStatus(e.Key, e.Value, batching.GetValueOrDefault(e.Key).Batches,
                batching.GetValueOrDefault(e.Key).Instances))
            .ToList();
        bool ready = encoders.AllLoaded && backends.Count > 0 && backends.Values.All(v => v);
        return Results.Json(new StatusResponse(ready, backends, loaded), StatusJson.Default.StatusResponse);
    }

    private static async Task<Dictionary<string, bool>> BackendsAsync(IProxyStateLookup state,
        IHttpClientFactory http)
    {
        var backends = new Dictionary<string, bool>();
        foreach (var cluster in state.GetClusters())
        {
            foreach (var destination in cluster.Destinations.Values)
            {
                string address = destination.Model.Config.Address.TrimEnd('/') + "/v1/models";
                backends[$"{cluster.ClusterId}:{destination.DestinationId}"] = await AnswersAsync(http, address);
            }
        }

        return backends;
    }

    private static async Task<bool> AnswersAsync(IHttpClientFactory http, string address)
    {
        try
        {
            using HttpResponseMessage r = await http.CreateClient("readiness").GetAsync(address);
            return (int)r.StatusCode < 500;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }
}

[JsonSerializable(typeof(StatusResponse))]
internal sealed partial class StatusJson : JsonSerializerContext;
