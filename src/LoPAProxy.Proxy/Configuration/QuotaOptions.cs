namespace LoPAProxy.Proxy.Configuration;

public sealed class QuotaOptions
{
    public int MaxAdaptersPerTenant { get; set; } = 100;
    public long MaxBytesPerTenant { get; set; } = 1L << 30;
    public long MaxUploadBytes { get; set; } = 256L << 20;
    /// <summary>One fine-tuning file (POST /v1/files).</summary>
    public long MaxFileBytes { get; set; } = 64L << 20;
    /// <summary>All of a tenant's files together.</summary>
    public long MaxFileBytesPerTenant { get; set; } = 512L << 20;
}
