using LoPAProxy.Core.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace LoPAProxy.Proxy.Observability;

/// <summary>
/// OpenTelemetry for the proxy: the LoPA meters and activity sources plus ASP.NET Core, HttpClient (the forward to the
/// model server) and runtime instrumentation; metrics at /metrics in Prometheus' format, and metrics and traces over
/// OTLP when LoPA:Telemetry:OtlpEndpoint (or the standard OTEL_EXPORTER_OTLP_ENDPOINT) is set.
/// </summary>
public static class Telemetry
{
    public static void Add(IServiceCollection services, IConfiguration configuration)
    {
        // OTEL_EXPORTER_OTLP_ENDPOINT is OpenTelemetry's own standard variable, not a LoPA option.
        string? otlp = configuration.GetSection("LoPA:Telemetry").Get<Configuration.TelemetryOptions>()?.OtlpEndpoint
            ?? configuration["OTEL_EXPORTER_OTLP_ENDPOINT"];
        services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("lopaproxy"))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(ProxyTelemetry.Name, CoreTelemetry.Name)
                    .AddAspNetCoreInstrumentation()
                    .AddHttpClientInstrumentation()
                    .AddRuntimeInstrumentation()
                    .AddPrometheusExporter();
                if (otlp is not null) metrics.AddOtlpExporter(o => o.Endpoint = new Uri(otlp));
            })
            .WithTracing(tracing =>
            {
                tracing.AddSource(ProxyTelemetry.Name, CoreTelemetry.Name)
                    .AddAspNetCoreInstrumentation()
                    .AddHttpClientInstrumentation();
                if (otlp is not null) tracing.AddOtlpExporter(o => o.Endpoint = new Uri(otlp));
            });
    }
}
