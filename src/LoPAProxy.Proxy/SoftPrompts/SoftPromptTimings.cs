namespace LoPAProxy.Proxy.SoftPrompts;

/// <summary>Timings the request log reports.</summary>
public sealed class SoftPromptTimings
{
    public double EncoderMs { get; set; }
    public double GeneratorMs { get; set; }
}
