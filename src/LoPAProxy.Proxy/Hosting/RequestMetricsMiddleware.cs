using System.Diagnostics;
using LoPAProxy.Proxy.Observability;
using LoPAProxy.Proxy.Usage;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.Proxy.Hosting;

/// <summary>Request counts and durations as metrics (the log line is Serilog's request logging, see
/// <see cref="RequestLogging"/>).</summary>
public sealed class RequestMetricsMiddleware(RequestDelegate next)
{
    public async Task InvokeAsync(HttpContext http)
    {
        long started = Stopwatch.GetTimestamp();
        try
        {
            await next(http);
        }
        finally
        {
            RecordMetrics(http, http.Features.Get<RequestRecord>(), Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
    }

    /// <summary>
    /// Request count and durations, labelled by the matched route's pattern (bounded: never the raw path), status,
    /// and — once authenticated and found — tenant and adapter (so unknown names cannot blow up label cardinality).
    /// </summary>
    private static void RecordMetrics(HttpContext http, RequestRecord? r, double seconds)
    {
        string route = (http.GetEndpoint() as Microsoft.AspNetCore.Routing.RouteEndpoint)?.RoutePattern.RawText
            ?? "none";
        var tags = new TagList
        {
            { "route", route }, { "status", http.Response.StatusCode }, { "tenant", r?.Tenant ?? "none" },
            { "adapter", r?.Adapter ?? "none" },
        };
        ProxyTelemetry.Requests.Add(1, tags);
        ProxyTelemetry.RequestDuration.Record(seconds, tags);
        if (r is null || r.Adapter is null) return;
        ProxyTelemetry.EncoderDuration.Record(r.Timings.EncoderMs / 1000, tags);
        ProxyTelemetry.GeneratorDuration.Record(r.Timings.GeneratorMs / 1000, tags);
    }
}
