namespace LoPAProxy.Proxy.Configuration;

public sealed class LimitOptions
{
    /// <summary>Request bodies of the OpenAI routes (adapter uploads have their own: Quotas:MaxUploadBytes).</summary>
    public long MaxBodyBytes { get; set; } = 4 << 20;
    public int BackendTimeoutSeconds { get; set; } = 120;
    /// <summary>Prompts in one completions request (a list prompt, or a list of prompt_embeds).</summary>
    public int MaxPromptsPerRequest { get; set; } = 64;
    /// <summary>
    /// Embedding values (rows × d, all prompts) one request may have the proxy build. Unset: the backend model's
    /// whole context at its hidden size (at least 2 Mi), so any prompt the model can take is taken.
    /// </summary>
    public long? MaxEmbeddingValuesPerRequest { get; set; }
    /// <summary>
    /// Bytes all soft-prompt rewrites in flight may hold together (each request reserves what its dialect is
    /// measured to allocate per embedding value); past it requests queue, then get 503 with Retry-After.
    /// </summary>
    public long MaxRewriteBytesInFlight { get; set; } = 1L << 30;
    /// <summary>How long a request waits for rewrite capacity before its 503.</summary>
    public int RewriteQueueSeconds { get; set; } = 5;

    /// <summary>The per-request cap for a model with this context length and hidden size.</summary>
    public long EmbeddingValuesCap(int? contextLength, int hiddenSize) => MaxEmbeddingValuesPerRequest
        ?? Math.Max(2L << 20, (long)(contextLength ?? 0) * hiddenSize);
    /// <summary>Rows a client-supplied embedding may have when the backend's context length is unknown.</summary>
    public int MaxClientEmbeddingRows { get; set; } = 8192;
}
