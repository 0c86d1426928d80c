using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Engine.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;

namespace LoPAProxy.Proxy.Tests.Hardening;

/// <summary>
/// The proxy in front of recording backends: "chat" (vllm-chat, with a backend key and the model's tokenizer),
/// "completions" (vllm-completions), a catch-all route to the chat backend, and "/dying/…" whose backend drops
/// streams halfway. Tenants acme (adapter "story"), globex ("secret") and embedder (may send its own embeddings).
/// </summary>
public sealed class HardeningFixture : IAsyncLifetime
{
    public const string AcmeKey = "acme-key-0123456789abcdef", GlobexKey = "globex-key-0123456789abcdef";
    public const string EmbedderKey = "embedder-key-0123456789abcdef", BackendKey = "backend-secret-0123456789";
    /// <summary>A header the operator allows through (LoPA:ForwardHeaders).</summary>
    public const string ForwardedHeader = "X-Tenant-Region";

    public RecordingBackend Backend { get; private set; } = null!;
    public RecordingBackend Dying { get; private set; } = null!;
    public WebApplication Proxy { get; private set; } = null!;
    public string ProxyUrl => Proxy.Urls.First();
    public string ModelPath { get; } = SharedFiles.Path_("models", "stories260K", "stories260K.bin");
    public string AdaptersDir { get; } = TempDir.Create();

    public async Task InitializeAsync()
    {
        Backend = await RecordingBackend.StartAsync();
        Dying = await RecordingBackend.StartAsync(dieMidStream: true);
        MakeAdapter("acme", "story", 11);
        MakeAdapter("globex", "secret", 12);
        MakeAdapter("acme", "mini", 13, "minilm", 384);
        string storePath = await Store.SeededStore.ImportAsync(AdaptersDir);
        IConfiguration config = new ConfigurationBuilder().AddInMemoryCollection(Settings(storePath)).Build();
        Proxy = ProxyApp.Build(config, "http://127.0.0.1:0");
        await Proxy.StartAsync();
    }

    private Dictionary<string, string?> Settings(string storePath)
    {
        var s = new Dictionary<string, string?>
        {
            ["LoPA:Encoders:0"] = "fm-mean", ["LoPA:EncoderFiles:FoundationModel"] = ModelPath,
            ["LoPA:Store:Path"] = storePath,
            ["LoPA:Tenants:acme:ApiKeys:0"] = AcmeKey, ["LoPA:Tenants:globex:ApiKeys:0"] = GlobexKey,
            ["LoPA:Tenants:embedder:ApiKeys:0"] = EmbedderKey, ["LoPA:ClientEmbeds:AllowedTenants:0"] = "embedder",
            ["LoPA:Limits:BackendTimeoutSeconds"] = "10", ["LoPA:ForwardHeaders:0"] = ForwardedHeader,
            ["LoPA:Encoding:MaxBatch"] = "32", ["LoPA:Encoding:MaxWaitMs"] = "5",
        };
        Route(s, "chat", "/v1/chat/completions", "chat");
        Route(s, "completions", "/v1/completions", "completions");
        Route(s, "models", "/v1/models", "chat");
        Route(s, "any", "/{**rest}", "chat");
        s["ReverseProxy:Routes:any:Order"] = "100";
        Route(s, "dying", "/dying/{**rest}", "dying");
        s["ReverseProxy:Routes:dying:Transforms:0:PathRemovePrefix"] = "/dying";
        Cluster(s, "chat", Backend.Url, "vllm-chat");
        s["LoPA:Clusters:chat:ApiKey"] = BackendKey;
        Cluster(s, "completions", Backend.Url, "vllm-completions");
        Cluster(s, "dying", Dying.Url, "vllm-chat");
        return s;
    }

    private static void Route(Dictionary<string, string?> s, string id, string path, string cluster)
    {
        s[$"ReverseProxy:Routes:{id}:ClusterId"] = cluster;
        s[$"ReverseProxy:Routes:{id}:Match:Path"] = path;
    }

    private void Cluster(Dictionary<string, string?> s, string id, string address, string dialect)
    {
        s[$"ReverseProxy:Clusters:{id}:Destinations:d1:Address"] = address;
        s[$"LoPA:Clusters:{id}:Dialect"] = dialect;
        s[$"LoPA:Clusters:{id}:Model"] = "stories260K";
        s[$"LoPA:Clusters:{id}:HiddenSize"] = "64";
        s[$"LoPA:Clusters:{id}:ModelPath"] = ModelPath;
    }

    private void MakeAdapter(string tenant, string name, int seed, string encoder = "fm-mean", int encoderDim = 64)
    {
        var config = new AdapterConfig
        {
            NumVirtualTokens = 4, TokenDim = 64, Rank = 2, HiddenSize = 16, Encoder = encoder, EncoderDim = encoderDim,
            BaseModel = "stories260K",
        };
        LoPAProxy.Core.Tests.GeneratorTests.Random(config, seed).SaveDirectory(Path.Combine(AdaptersDir, tenant, name));
    }

    public HttpClient Client(string? key)
    {
        var c = new HttpClient { BaseAddress = new Uri(ProxyUrl), Timeout = TimeSpan.FromSeconds(60) };
        if (key != null) c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return c;
    }

    /// <summary>POSTs raw JSON text; returns the status and the body text.</summary>
    public async Task<(int Status, string Text)> PostAsync(string? key, string path, string json,
        Action<HttpRequestMessage>? tweak = null)
    {
        using HttpClient c = Client(key);
        var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = new StringContent(json, Encoding.UTF8,
            "application/json")
        };
        tweak?.Invoke(request);
        using HttpResponseMessage response = await c.SendAsync(request);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    public Task<(int Status, string Text)> PostAsync(string? key, string path, object body,
        Action<HttpRequestMessage>? tweak = null) => PostAsync(key, path, JsonSerializer.Serialize(body), tweak);

    public static object Chat(string model, string content = "Tom had a red kite", bool stream = false) => new
    {
        model, stream, max_tokens = 4, messages = new[] { new { role = "user", content } },
    };

    /// <summary>Asserts an OpenAI error body with this code; returns it.</summary>
    public static JsonElement IsError(string text, string code)
    {
        Assert.False(string.IsNullOrEmpty(text), "empty error body");
        JsonElement error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        return error;
    }

    public async Task DisposeAsync()
    {
        await Proxy.StopAsync();
        await Proxy.DisposeAsync();
        await Backend.DisposeAsync();
        await Dying.DisposeAsync();
    }
}
