namespace LoPAProxy.Proxy.Configuration;

/// <summary>LoPA:Usage — how usage is aggregated and written.</summary>
public sealed class UsageOptions
{
    /// <summary>Usage is summed in memory and written to the store this often (and when the proxy stops).</summary>
    public double FlushSeconds { get; set; } = 5;
}
