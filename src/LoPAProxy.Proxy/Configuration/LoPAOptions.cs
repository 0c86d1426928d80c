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
