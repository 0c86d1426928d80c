using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Core.Generation;
using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Engine.Tokenizers;
using LoPAProxy.ModelServer;
using LoPAProxy.ModelServer.Generation;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;

namespace LoPAProxy.Proxy.Tests;

/// <summary>
/// Real processes' worth of servers on 127.0.0.1: the reference model server (stories260K), a capture backend that
/// records what the proxy forwards (and can stall), and the proxy in front of them, configured like proxy.json.
/// Tenants: acme (adapters "story" on fm-mean, "narrow" with the wrong hidden size) and globex ("secret").
/// </summary>
public class ProxyFixture : IAsyncLifetime
{
    public const string AcmeKey = "acme-key-0123456789abcdef", GlobexKey = "globex-key-0123456789abcdef";
    public static readonly string StoriesPath = SharedFiles.Path_("models", "stories260K", "stories260K.bin");
    public static readonly Lazy<ServedModel> Stories = new(() => ServedModel.Load(new ModelServerOptions
    {
        ModelPath = StoriesPath, ModelCacheDirectory = TempDir.Create(),
    }));
    /// <summary>run.c's tokenizer and the checkpoint's embedding table: the references for what the proxy sends.
    /// </summary>
    public static readonly Lazy<(SentencePieceBpeTokenizer Tokenizer, float[] Embeddings)> References = new(() => (
        SentencePieceBpeTokenizer.Load(SharedFiles.Path_("models", "stories260K", "tok512.bin"), 512),
        Llama2cCheckpoint.Load(StoriesPath).Weights.TokenEmbedding.ToArray()));

    /// <summary>Embedding rows [tokens, 64] from the checkpoint.</summary>
    public static float[] EmbeddingRows(int[] tokens) =>
        tokens.SelectMany(t => References.Value.Embeddings.AsSpan(t * 64, 64).ToArray()).ToArray();

    public WebApplication Reference { get; private set; } = null!;
    public WebApplication Capture { get; private set; } = null!;
    public WebApplication Proxy { get; private set; } = null!;
    public WebApplication Sglang { get; private set; } = null!;
    public ConcurrentQueue<string> SglangBodies { get; } = new();
    public WebApplication Triton { get; private set; } = null!;
    public ConcurrentQueue<string> TritonBodies { get; } = new();
    public HttpClient Direct { get; private set; } = null!;
    public string ProxyUrl { get; private set; } = "";
    public string AdaptersDir { get; } = TempDir.Create();
    public ConcurrentDictionary<string, string> Captured { get; } = new();
    public int CaptureDelayMs { get; set; }
    /// <summary>The reference server's per-token delay (a slow model makes in-flight states observable).</summary>
    protected virtual int DelayPerTokenMs => 0;

    public async Task InitializeAsync()
    {
        Reference = ModelServerApp.Build(new ModelServerOptions { ModelPath = "unused", Port = 0, DelayPerTokenMs = DelayPerTokenMs }, Stories.Value);
        await Reference.StartAsync();
        Capture = BuildCapture();
        await Capture.StartAsync();
        Sglang = FakeSglang.Build(Stories.Value, SglangBodies);
        await Sglang.StartAsync();
        Triton = Dialects.FakeTritonTrtLlm.Build(Stories.Value, TritonBodies);
        await Triton.StartAsync();
        string model = SharedFiles.Path_("models", "stories260K", "stories260K.bin");
        MakeAdapter("acme", "story", 64);
        MakeAdapter("acme", "narrow", 32);
        MakeAdapter("globex", "secret", 64);
        string storePath = await Store.SeededStore.ImportAsync(AdaptersDir);
        var settings = new Dictionary<string, string?>
        {
            ["ReverseProxy:Routes:chat:ClusterId"] = "chat", ["ReverseProxy:Routes:chat:Match:Path"] = "/v1/chat/completions",
            ["ReverseProxy:Routes:completions:ClusterId"] = "completions", ["ReverseProxy:Routes:completions:Match:Path"] = "/v1/completions",
            ["ReverseProxy:Routes:models:ClusterId"] = "chat", ["ReverseProxy:Routes:models:Match:Path"] = "/v1/models",
            ["ReverseProxy:Routes:capture:ClusterId"] = "capture", ["ReverseProxy:Routes:capture:Match:Path"] = "/capture/{**rest}",
            ["ReverseProxy:Routes:capture:Transforms:0:PathRemovePrefix"] = "/capture",
            ["ReverseProxy:Routes:dead:ClusterId"] = "dead", ["ReverseProxy:Routes:dead:Match:Path"] = "/dead/{**rest}",
            ["ReverseProxy:Routes:dead:Transforms:0:PathRemovePrefix"] = "/dead",
            ["ReverseProxy:Routes:sglang:ClusterId"] = "sglang", ["ReverseProxy:Routes:sglang:Match:Path"] = "/sglang/{**rest}",
            ["ReverseProxy:Routes:sglang:Transforms:0:PathRemovePrefix"] = "/sglang",
            ["ReverseProxy:Clusters:sglang:Destinations:d1:Address"] = Sglang.Urls.First(),
            ["LoPA:Clusters:sglang:Dialect"] = "sglang", ["LoPA:Clusters:sglang:Model"] = "stories260K", ["LoPA:Clusters:sglang:HiddenSize"] = "64",
            ["LoPA:Clusters:sglang:ModelPath"] = model,
            ["ReverseProxy:Routes:trtllm:ClusterId"] = "trtllm",
            ["ReverseProxy:Routes:trtllm:Match:Path"] = "/trtllm/{**rest}",
            ["ReverseProxy:Routes:trtllm:Transforms:0:PathRemovePrefix"] = "/trtllm",
            ["ReverseProxy:Clusters:trtllm:Destinations:d1:Address"] = Triton.Urls.First(),
            ["LoPA:Clusters:trtllm:Dialect"] = "trtllm", ["LoPA:Clusters:trtllm:Model"] = "stories260K",
            ["LoPA:Clusters:trtllm:HiddenSize"] = "64", ["LoPA:Clusters:trtllm:ModelPath"] = model,
            ["ReverseProxy:Routes:trtllm16:ClusterId"] = "trtllm16",
            ["ReverseProxy:Routes:trtllm16:Match:Path"] = "/trtllm16/{**rest}",
            ["ReverseProxy:Routes:trtllm16:Transforms:0:PathRemovePrefix"] = "/trtllm16",
            ["ReverseProxy:Clusters:trtllm16:Destinations:d1:Address"] = Triton.Urls.First(),
            ["LoPA:Clusters:trtllm16:Dialect"] = "trtllm", ["LoPA:Clusters:trtllm16:Model"] = "stories260K-fp16",
            ["LoPA:Clusters:trtllm16:HiddenSize"] = "64", ["LoPA:Clusters:trtllm16:ModelPath"] = model,
            ["LoPA:Clusters:trtllm16:WireDType"] = "fp16",
            ["ReverseProxy:Clusters:chat:Destinations:d1:Address"] = Reference.Urls.First(),
            ["ReverseProxy:Clusters:completions:Destinations:d1:Address"] = Reference.Urls.First(),
            ["ReverseProxy:Clusters:capture:Destinations:d1:Address"] = Capture.Urls.First(),
            ["ReverseProxy:Clusters:dead:Destinations:d1:Address"] = "http://127.0.0.1:9", // discard port: nothing listens
            ["LoPA:Clusters:chat:Dialect"] = "vllm-chat", ["LoPA:Clusters:chat:Model"] = "stories260K", ["LoPA:Clusters:chat:HiddenSize"] = "64",
            ["LoPA:Clusters:completions:Dialect"] = "vllm-completions", ["LoPA:Clusters:completions:Model"] = "stories260K",
            ["LoPA:Clusters:completions:HiddenSize"] = "64", ["LoPA:Clusters:completions:ModelPath"] = model,
            ["LoPA:Clusters:capture:Dialect"] = "vllm-chat", ["LoPA:Clusters:capture:Model"] = "stories260K", ["LoPA:Clusters:capture:HiddenSize"] = "64",
            ["LoPA:Clusters:dead:Dialect"] = "vllm-chat", ["LoPA:Clusters:dead:Model"] = "stories260K", ["LoPA:Clusters:dead:HiddenSize"] = "64",
            ["LoPA:Encoders:0"] = "fm-mean", ["LoPA:EncoderFiles:FoundationModel"] = model,
            ["LoPA:Store:Path"] = storePath, ["LoPA:Adapters:CacheSize"] = "2",
            ["LoPA:Tenants:acme:ApiKeys:0"] = AcmeKey, ["LoPA:Tenants:globex:ApiKeys:0"] = GlobexKey,
            ["LoPA:Limits:MaxBodyBytes"] = "65536", ["LoPA:Limits:BackendTimeoutSeconds"] = "2",
        };
        IConfiguration config = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        Proxy = ProxyApp.Build(config, "http://127.0.0.1:0");
        await Proxy.StartAsync();
        ProxyUrl = Proxy.Urls.First();
        Direct = new HttpClient { BaseAddress = new Uri(Reference.Urls.First()) };
    }

    /// <summary>Z [4, 64] as the LoPA maths gives it for this adapter and instance (the fm-mean encoder).</summary>
    public float[] ExpectedZ(string tenant, string adapter, string instance)
    {
        var a = LopaAdapter.Load(Path.Combine(AdaptersDir, tenant, adapter));
        var encoder = EncoderFactory.Create("fm-mean", new EncoderOptions { FoundationModel = StoriesPath });
        var x = new float[encoder.Dim];
        encoder.Encode(new[] { instance }, x);
        return new SoftPromptGenerator(a).Generate(x, 1);
    }

    private void MakeAdapter(string tenant, string name, int d)
    {
        var config = new AdapterConfig { NumVirtualTokens = 4, TokenDim = d, Rank = 2, HiddenSize = 16, Encoder = "fm-mean", EncoderDim = 64, BaseModel = "stories260K" };
        LoPAProxy.Core.Tests.GeneratorTests.Random(config, tenant.Length * 31 + d).SaveDirectory(Path.Combine(AdaptersDir, tenant, name));
    }

    private WebApplication BuildCapture()
    {
        var b = WebApplication.CreateSlimBuilder();
        b.WebHost.UseUrls("http://127.0.0.1:0");
        var app = b.Build();
        app.MapPost("/{**path}", async (HttpContext h) =>
        {
            string body = await new StreamReader(h.Request.Body).ReadToEndAsync();
            Captured[h.Request.Path.Value!] = body;
            if (CaptureDelayMs > 0) await Task.Delay(CaptureDelayMs, h.RequestAborted);
            return Results.Json(new { id = "x", @object = "chat.completion", choices = new[] { new { index = 0, message = new { role = "assistant", content = "captured" }, finish_reason = "stop" } } });
        });
        return app;
    }

    /// <summary>Runs a script of tests/node (the official openai client) against the proxy as acme, with
    /// OPENAI_BASE_URL, OPENAI_API_KEY and LOPA_MODEL set; returns the JSON it prints.</summary>
    public async Task<System.Text.Json.JsonElement> RunOpenAiScriptAsync(string script,
        string model = "stories260K:story", IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("node", Path.Combine(Node.Directory, script))
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Node.Directory,
        };
        psi.Environment["OPENAI_BASE_URL"] = ProxyUrl + "/v1";
        psi.Environment["OPENAI_API_KEY"] = AcmeKey;
        psi.Environment["LOPA_MODEL"] = model;
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) psi.Environment[name] = value;
        using var node = System.Diagnostics.Process.Start(psi)!;
        Task<string> stdout = node.StandardOutput.ReadToEndAsync(), stderr = node.StandardError.ReadToEndAsync();
        Assert.True(node.WaitForExit(120_000), $"node {script} timed out");
        Assert.True(node.ExitCode == 0, await stderr);
        return System.Text.Json.JsonDocument.Parse(await stdout).RootElement.Clone();
    }

    public HttpClient Client(string? key)
    {
        var c = new HttpClient { BaseAddress = new Uri(ProxyUrl), Timeout = TimeSpan.FromSeconds(60) };
        if (key != null) c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return c;
    }

    public async Task<(int Status, JsonElement Body)> Post(string? key, string path, object body, string? adapterHeader = null)
    {
        using var c = Client(key);
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        if (adapterHeader != null) request.Headers.Add("X-LoPA-Adapter", adapterHeader);
        using var response = await c.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    public async Task<(int Status, string Text)> PostRaw(string? key, string path, string body)
    {
        using var c = Client(key);
        using var response = await c.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    public async Task DisposeAsync()
    {
        Direct.Dispose();
        foreach (var app in new[] { Proxy, Capture, Sglang, Triton,
            Reference }) { await app.StopAsync(); await app.DisposeAsync(); }
    }
}

/// <summary>The same stack with a slow model server (20 ms per token).</summary>
public sealed class SlowProxyFixture : ProxyFixture
{
    protected override int DelayPerTokenMs => 20;
}
