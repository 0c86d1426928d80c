namespace LoPAProxy.ModelServer;

/// <summary>Settings of the reference model server.</summary>
public sealed record ModelServerOptions
{
    /// <summary>A llama2.c checkpoint (.bin, tokenizer.bin or tok&lt;vocab&gt;.bin beside it) or a Hugging Face Llama directory.</summary>
    public required string ModelPath { get; init; }
    /// <summary>Explicit tokenizer file; default: looked up beside the model.</summary>
    public string? TokenizerPath { get; init; }
    /// <summary>Name served in /v1/models and accepted in "model"; default: the file or directory name.</summary>
    public string? ModelName { get; init; }
    public string Host { get; init; } = "127.0.0.1";
    public int Port { get; init; } = 8001;
    /// <summary>Generations computed at once; further requests wait in the queue.</summary>
    public int MaxConcurrent { get; init; } = Environment.ProcessorCount;
    /// <summary>Requests allowed to wait; beyond this the server answers 503.</summary>
    public int MaxQueued { get; init; } = 64;
    /// <summary>Largest max_tokens a request may ask for.</summary>
    public int MaxTokensLimit { get; init; } = 4096;
    /// <summary>Chat template: "plain" (contents joined by newlines) or "llama2" ([INST] … [/INST]).</summary>
    public string ChatTemplate { get; init; } = "plain";
    /// <summary>Milliseconds to wait after each generated token: makes the tiny demo model behave like a bigger one for
    /// load tests of the proxy, and makes in-flight behaviour (queueing, cancellation) observable. 0 in production.</summary>
    public int DelayPerTokenMs { get; init; }
    /// <summary>Largest request body in bytes.</summary>
    public long MaxBodyBytes { get; init; } = 64L << 20;
}
