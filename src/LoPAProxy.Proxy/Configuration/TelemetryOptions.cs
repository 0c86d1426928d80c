namespace LoPAProxy.Proxy.Configuration;

public sealed class TelemetryOptions
{
    /// <summary>An OTLP collector (e.g. http://otel-collector:4317) for metrics and traces;
    /// OTEL_EXPORTER_OTLP_ENDPOINT works too.</summary>
    public string? OtlpEndpoint { get; set; }
}
