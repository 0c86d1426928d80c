using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace LoPAProxy.Proxy.Observability;

/// <summary>
/// The proxy's instruments and spans (System.Diagnostics; exported by OpenTelemetry — Prometheus at /metrics, OTLP
/// when an endpoint is configured). Metric names as Prometheus shows them are listed in docs/operations.md and used by
/// deploy/grafana-dashboard.json (a test keeps the two in step with a live /metrics).
/// </summary>
public static class ProxyTelemetry
{
    public const string Name = "LoPAProxy";

    public static readonly Meter Meter = new(Name);
    public static readonly ActivitySource Activities = new(Name);

    /// <summary>Requests by route, status, tenant and adapter.</summary>
    public static readonly Counter<long> Requests = Meter.CreateCounter<long>("lopa.requests", "{request}",
        "requests answered");

    public static readonly Histogram<double> RequestDuration = Meter.CreateHistogram<double>("lopa.request.duration",
        "s",
        "time from the request's arrival to the end of its answer");

    public static readonly Histogram<double> EncoderDuration = Meter.CreateHistogram<double>("lopa.encoder.duration",
        "s",
        "instance encoding per request (queue wait included)");

    public static readonly Histogram<double> GeneratorDuration = Meter.CreateHistogram<double>("lopa.generator.duration", "s",
        "soft-prompt generation per request");

    public static readonly Histogram<double> RewriteDuration = Meter.CreateHistogram<double>("lopa.rewrite.duration",
        "s",
        "the whole LoPA step per request: measure, encode, generate, rewrite");

    public static readonly Histogram<double> BackendDuration = Meter.CreateHistogram<double>("lopa.backend.duration",
        "s",
        "time in the model server, forwarding included, until the answer ended");

    public static readonly UpDownCounter<long> RewriteBytesInFlight = Meter.CreateUpDownCounter<long>(
        "lopa.rewrite.bytes_in_flight", "By", "bytes reserved by soft-prompt rewrites now in flight");

    public static readonly UpDownCounter<long> ActiveStreams = Meter.CreateUpDownCounter<long>("lopa.streams.active",
        "{stream}",
        "streamed answers in flight");

    public static readonly Counter<long> AdapterCacheHits = Meter.CreateCounter<long>("lopa.adapter_cache.hits",
        "{lookup}",
        "adapter lookups served from the cache");

    public static readonly Counter<long> AdapterCacheMisses = Meter.CreateCounter<long>("lopa.adapter_cache.misses",
        "{lookup}",
        "adapter lookups that loaded from the store or disk");

    public static readonly Histogram<double> StoreDuration = Meter.CreateHistogram<double>("lopa.store.duration", "s",
        "adapter store reads on a cache miss");

    public static readonly Counter<long> UsagePromptTokens = Meter.CreateCounter<long>("lopa.usage.prompt_tokens",
        "{token}", "prompt tokens the backends reported (soft-prompt rows included), by tenant and adapter");

    public static readonly Counter<long> UsageCompletionTokens = Meter.CreateCounter<long>(
        "lopa.usage.completion_tokens", "{token}", "completion tokens the backends reported, by tenant and adapter");

    public static readonly Counter<long> UsageSoftPromptRows = Meter.CreateCounter<long>(
        "lopa.usage.soft_prompt_rows", "{row}", "soft-prompt rows sent, by tenant and adapter");

    public static readonly Counter<long> RateLimited = Meter.CreateCounter<long>("lopa.rate_limited", "{request}",
        "requests refused by a limit, by tenant and limit (requests, tokens, concurrency, budget, too_large)");

    public static readonly Histogram<double> RateLimitDuration = Meter.CreateHistogram<double>(
        "lopa.ratelimit.duration", "s", "one admission by the limiter (local or shared counters)");

    public static readonly Counter<long> RateLimitStoreErrors = Meter.CreateCounter<long>(
        "lopa.ratelimit.store_errors", "{error}", "calls to the shared limiter counters that failed or timed out");
}
