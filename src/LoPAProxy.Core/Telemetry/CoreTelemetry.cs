using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace LoPAProxy.Core.Telemetry;

/// <summary>
/// The core's instruments, on the BCL's System.Diagnostics (no exporter dependency here): the proxy's OpenTelemetry
/// set-up listens to the meter and the activity source by name. Names follow Prometheus conventions once exported
/// (lopa_encoder_batch_size, lopa_encoder_queue_wait_seconds, …).
/// </summary>
public static class CoreTelemetry
{
    public const string Name = "LoPAProxy.Core";

    public static readonly Meter Meter = new(Name);
    public static readonly ActivitySource Activities = new(Name);

    /// <summary>Instances per encoder run (micro-batching).</summary>
    public static readonly Histogram<int> BatchSize = Meter.CreateHistogram<int>("lopa.encoder.batch_size",
        "{instance}",
        "instances per encoder run", advice: new InstrumentAdvice<int>
        {
            HistogramBucketBoundaries = [1, 2, 4, 8, 16,
            32, 64]
        });

    /// <summary>How long an instance waited in the micro-batcher's queue.</summary>
    public static readonly Histogram<double> QueueWait = Meter.CreateHistogram<double>("lopa.encoder.queue_wait", "s",
        "time an instance waited for its encoder run");

    public static readonly Counter<long> InstanceCacheHits = Meter.CreateCounter<long>("lopa.instance_cache.hits",
        "{instance}",
        "instance vectors served from the instance cache");

    public static readonly Counter<long> InstanceCacheMisses = Meter.CreateCounter<long>("lopa.instance_cache.misses",
        "{instance}",
        "instance vectors the encoder had to compute");
}
