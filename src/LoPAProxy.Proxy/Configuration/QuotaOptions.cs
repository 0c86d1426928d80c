namespace LoPAProxy.Proxy.Configuration;

public sealed class QuotaOptions
{
    public int MaxAdaptersPerTenant { get; set; } = 100;
    public long MaxBytesPerTenant { get; set; } = 1L << 30;
    public long MaxUploadBytes { get; set; } = 256L << 20;
}
