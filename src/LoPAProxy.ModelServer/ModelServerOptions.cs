namespace LoPAProxy.ModelServer;

/// <summary>Settings of the reference model server (llama.cpp through LLamaSharp).</summary>
public sealed record ModelServerOptions
{
    /// <summary>A GGUF file, or a llama2.c checkpoint (.bin, tokenizer beside it) converted to GGUF once.</summary>
    public required string ModelPath { get; init; }
    /// <summary>A llama2.c checkpoint's tokenizer.bin; default: tok&lt;vocab&gt;.bin or tokenizer.bin beside
    /// it.</summary>
    public string? TokenizerPath { get; init; }
    /// <summary>Where converted llama2.c checkpoints are kept; default: ~/.local/share/lopa/models.</summary>
    public string? ModelCacheDirectory { get; init; }
    /// <summary>Name served in /v1/models and accepted in "model"; default: the file name without extension.</summary>
    public string? ModelName { get; init; }
    public string Host { get; init; } = "127.0.0.1";
    public int Port { get; init; } = 8001;
    /// <summary>Sequences decoded together (llama.cpp sequence slots); further requests wait in the queue.</summary>
    public int MaxConcurrent { get; init; } = 8;
    /// <summary>Requests allowed to wait; beyond this the server answers 503.</summary>
    public int MaxQueued { get; init; } = 64;
    /// <summary>Largest max_tokens a request may ask for.</summary>
    public int MaxTokensLimit { get; init; } = 4096;
    /// <summary>Positions per sequence; default: the model's training context (GGUF context_length).</summary>
    public int? ContextLength { get; init; }
    /// <summary>llama.cpp threads; default: one per core. llama.cpp spin-waits, so give it only cores it
    /// owns.</summary>
    public int? Threads { get; init; }
    /// <summary>KV cache type: f32 (default: logits within 1e-5 of an F32 reference), f16 or q8_0 (half or a
    /// quarter of the memory per stream, for big models; logits move by ~1e-2).</summary>
    public string KvCacheType { get; init; } = "f32";
    /// <summary>Chat template: auto (the GGUF's own, else plain), plain, llama2, or a llama.cpp template
    /// name.</summary>
    public string ChatTemplate { get; init; } = "auto";
    /// <summary>Milliseconds to wait after each generated token: makes the tiny demo model behave like a bigger one for
    /// load tests of the proxy, and makes in-flight behaviour (queueing, cancellation) observable. 0 in production.</summary>
    public int DelayPerTokenMs { get; init; }
    /// <summary>Largest request body in bytes.</summary>
    public long MaxBodyBytes { get; init; } = 64L << 20;
}
