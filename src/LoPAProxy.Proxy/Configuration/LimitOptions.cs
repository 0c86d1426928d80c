namespace LoPAProxy.Proxy.Configuration;

public sealed class LimitOptions
{
    /// <summary>Request bodies of the OpenAI routes (adapter uploads have their own: Quotas:MaxUploadBytes).</summary>
    public long MaxBodyBytes { get; set; } = 4 << 20;
    public int BackendTimeoutSeconds { get; set; } = 120;
    /// <summary>Prompts in one completions request (a list prompt, or a list of prompt_embeds).</summary>
    public int MaxPromptsPerRequest { get; set; } = 64;
    /// <summary>
    /// Embedding values (rows × d, all prompts) one request may build for a full-sequence dialect: bounds the proxy's
    /// work per request (vllm-completions streams them; SGLang still builds ~61 bytes per value, docs/proxy.md).
    /// </summary>
    public long MaxEmbeddingValuesPerRequest { get; set; } = 2L << 20;
    /// <summary>Rows a client-supplied embedding may have when the backend's context length is unknown.</summary>
    public int MaxClientEmbeddingRows { get; set; } = 8192;
}
