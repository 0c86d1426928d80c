namespace LoPAProxy.Proxy.Configuration;

public sealed class EncodingOptions
{
    /// <summary>Instances of concurrent requests encoded together, at most this many per run (1: off).</summary>
    public int MaxBatch { get; set; } = 32;
    /// <summary>How long, under load, the first instance of a batch waits for company (a lone request never
    /// waits).</summary>
    public double MaxWaitMs { get; set; } = 10;
    /// <summary>Instance vectors kept for repeated (encoder, text) pairs, in MiB (0: off).</summary>
    public int CacheMiB { get; set; } = 64;
}
