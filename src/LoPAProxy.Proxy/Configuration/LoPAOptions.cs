using LoPAProxy.Core.Encoders;
using LoPAProxy.Core.Encoders.Onnx;

namespace LoPAProxy.Proxy.Configuration;

/// <summary>The "LoPA" section of proxy.json (YARP's own "ReverseProxy" section sits beside it).</summary>
public sealed class LoPAOptions
{
    /// <summary>Per YARP cluster id: how to talk to that backend.</summary>
    public Dictionary<string, BackendOptions> Clusters { get; set; } = new();
    /// <summary>Encoders to load at start-up (others load on first use).</summary>
    public List<string> Encoders { get; set; } = new();
    public EncoderPaths EncoderFiles { get; set; } = new();
    public AdapterOptions Adapters { get; set; } = new();
    /// <summary>Tenants and their API keys. Keys belong in a secret or the environment
    /// (LoPA__Tenants__acme__ApiKeys__0), never in a committed file.</summary>
    public Dictionary<string, TenantOptions> Tenants { get; set; } = new();
    public LimitOptions Limits { get; set; } = new();
    /// <summary>Which text is the instance: "last-user" (default) or "all-user" (every user message, joined).</summary>
    public InstanceTextSource InstanceText { get; set; } = InstanceTextSource.LastUser;
    /// <summary>Where tenants, keys and adapters live: "directory" (the per-tenant folders, keys in configuration),
    /// "sqlite" or "postgres".</summary>
    public StoreOptions Store { get; set; } = new();
    /// <summary>The admin API's key (from the environment or a secret: LoPA__AdminKey); the admin API is off without
    /// one.</summary>
    public string? AdminKey { get; set; }
    public QuotaOptions Quotas { get; set; } = new();
    /// <summary>"json" (one object per line; the default in containers) or "text" (readable lines; the default
    /// elsewhere).</summary>
    public LogFormat? LogFormat { get; set; }
    /// <summary>Log prompt text (off by default: it is tenant data).</summary>
    public bool LogPromptText { get; set; }
    /// <summary>Which tenants may send embeddings of their own (refused for everyone else).</summary>
    public ClientEmbedsOptions ClientEmbeds { get; set; } = new();

    /// <summary>
    /// ONNX encoders by name: device (cpu | cuda[:N]), FallbackToCpu, Threads, AllowSpinning for the packaged minilm
    /// and arctic-xs, plus Directory for one's own sentence-transformers export under a name of one's choosing.
    /// </summary>
    public Dictionary<string, OnnxEncoderSettings> OnnxEncoders { get; set; } = new();
    /// <summary>Micro-batching of instances across concurrent requests, and the instance cache.</summary>
    public EncodingOptions Encoding { get; set; } = new();
    /// <summary>Per-tenant request, token, concurrency and budget limits, and where their counters live.</summary>
    public RateLimitOptions RateLimits { get; set; } = new();
    /// <summary>Usage accounting: how often the in-memory sums are written to the store.</summary>
    public UsageOptions Usage { get; set; } = new();
    /// <summary>Where metrics and traces go besides /metrics.</summary>
    public TelemetryOptions Telemetry { get; set; } = new();
    public ManagementOptions Management { get; set; } = new();
    /// <summary>Request headers forwarded to the model servers beside the built-in allow-list
    /// (<see cref="Pipeline.BackendCredentials.ForwardedByDefault"/>); every other header is dropped.</summary>
    public List<string> ForwardHeaders { get; set; } = new();

    public EncoderOptions ToEncoderOptions(Action<string>? warn = null) => new()
    {
        FoundationModel = EncoderFiles.FoundationModel,
        Onnx = OnnxEncoders, Warn = warn,
    };
}

public sealed class BackendOptions
{
    /// <summary>vllm-chat | vllm-completions | sglang.</summary>
    public string Dialect { get; set; } = "vllm-chat";
    /// <summary>The model name the backend serves; requests are rewritten to it.</summary>
    public string Model { get; set; } = "";
    /// <summary>The backend model's hidden size d; adapters must match it.</summary>
    public int HiddenSize { get; set; }
    /// <summary>Model directory or file with the FM's tokenizer and input embeddings (full-sequence
    /// dialects).</summary>
    public string? ModelPath { get; set; }
    /// <summary>fp32 | bf16 | fp16: the soft prompt's dtype on the wire.</summary>
    public WireDType WireDType { get; set; } = WireDType.Fp32;
    /// <summary>vllm-chat: the prompt_embeds part goes "before" (default) or "after" the instance text.</summary>
    public EmbedsPosition EmbedsPosition { get; set; } = EmbedsPosition.Before;
    /// <summary>
    /// The backend's context length in tokens (vLLM's --max-model-len). Unset: the model file's (ModelPath);
    /// with neither, prompts are not measured in tokens (the body limit still bounds them).
    /// </summary>
    public int? MaxModelLen { get; set; }
    /// <summary>
    /// The backend's own API key, sent as "Authorization: Bearer" instead of the tenant's (which never crosses).
    /// From a secret or the environment: LoPA__Clusters__&lt;id&gt;__ApiKey.
    /// </summary>
    public string? ApiKey { get; set; }
    /// <summary>
    /// The backend honours stream_options.include_usage (vLLM, SGLang and TensorRT-LLM do): streamed answers then
    /// carry usage for accounting, the proxy asking for it where the client did not (and taking it out again).
    /// </summary>
    public bool StreamUsage { get; set; } = true;
}

public sealed class EncoderPaths
{
    /// <summary>The foundation model (llama2.c .bin or HF directory) whose embedding rows fm-mean averages.</summary>
    public string? FoundationModel { get; set; }
}

public sealed class AdapterOptions
{
    /// <summary>Retired: the per-tenant folder layout is imported into the store (`lopa adapter import`); a
    /// configuration that still sets it fails at start-up instead of silently serving nothing.</summary>
    public string? Directory { get; set; }
    /// <summary>Loaded adapters kept in memory (least recently used evicted).</summary>
    public int CacheSize { get; set; } = 256;
    /// <summary>
    /// A cached store adapter older than this is checked against the store again before use: the bound on how long
    /// another replica may serve a version after a change whose notification it missed.
    /// </summary>
    public double RevalidateSeconds { get; set; } = 5;
    /// <summary>Store API keys remembered (positive and negative lookups), each for RevalidateSeconds.</summary>
    public int KeyCacheSize { get; set; } = 10_000;
}

public sealed class TenantOptions
{
    public List<string> ApiKeys { get; set; } = new();
}

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

public sealed class ClientEmbedsOptions
{
    /// <summary>Tenants whose own prompt_embeds / input_embeds are accepted (validated strictly); empty:
    /// nobody's.</summary>
    public List<string> AllowedTenants { get; set; } = new();
}

public sealed class StoreOptions
{
    /// <summary>sqlite (one process, or several on one host) or postgres (replicas). Adapters in per-tenant
    /// folders are brought in with `lopa adapter import`.</summary>
    public StoreKind Kind { get; set; } = StoreKind.Sqlite;
    /// <summary>SQLite database file.</summary>
    public string Path { get; set; } = "lopa.db";
    /// <summary>PostgreSQL connection string (from a secret).</summary>
    public string? ConnectionString { get; set; }
}

public sealed class QuotaOptions
{
    public int MaxAdaptersPerTenant { get; set; } = 100;
    public long MaxBytesPerTenant { get; set; } = 1L << 30;
    public long MaxUploadBytes { get; set; } = 256L << 20;
}

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

public sealed class ManagementOptions
{
    /// <summary>Where /metrics is served (with /healthz and /readyz), ";"-separated; the public port answers 404
    /// for it. Loopback by default: a Prometheus in the same pod, or set http://0.0.0.0:9464 to scrape it from
    /// outside. When the proxy itself listens on port 0, so does this, unless set.</summary>
    public string? Urls { get; set; }

    /// <summary>Loopback only by default: metrics are for the operator's scraper, not the tenants.</summary>
    public const string DefaultUrls = "http://127.0.0.1:9464";

    /// <summary>The management listener's URLs for a proxy listening on <paramref name="proxyUrls"/>.</summary>
    public string UrlsFor(string proxyUrls) =>
        Urls ?? (proxyUrls.EndsWith(":0", StringComparison.Ordinal) ? "http://127.0.0.1:0" : DefaultUrls);
}

public sealed class TelemetryOptions
{
    /// <summary>An OTLP collector (e.g. http://otel-collector:4317) for metrics and traces;
    /// OTEL_EXPORTER_OTLP_ENDPOINT works too.</summary>
    public string? OtlpEndpoint { get; set; }
}
