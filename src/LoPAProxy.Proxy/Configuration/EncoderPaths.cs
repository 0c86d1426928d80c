namespace LoPAProxy.Proxy.Configuration;

public sealed class EncoderPaths
{
    /// <summary>The foundation model (llama2.c .bin or HF directory) whose embedding rows fm-mean averages.</summary>
    public string? FoundationModel { get; set; }
}
