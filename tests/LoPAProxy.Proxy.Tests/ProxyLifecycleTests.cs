using System.Net.Http.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Tenancy;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Tests;

public class ProxyLifecycleTests(SlowProxyFixture f) : IClassFixture<SlowProxyFixture>
{
    [Fact]
    public async Task Bad_configuration_fails_at_start_naming_the_key()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["LoPA:Clusters:chat:Dialect"] = "tgi", ["LoPA:Clusters:chat:Model"] = "m", ["LoPA:Clusters:chat:HiddenSize"] = "0",
            ["LoPA:Clusters:full:Dialect"] = "vllm-completions", ["LoPA:Clusters:full:Model"] = "m", ["LoPA:Clusters:full:HiddenSize"] = "64",
            ["LoPA:Tenants:acme:ApiKeys:0"] = "short", ["LoPA:Encoders:0"] = "word2vec",
        }).Build();
        // Fails while the app is built (the encoders are preloaded there), before any port opens.
        var e = await Assert.ThrowsAsync<OptionsValidationException>(async () => { await using var app = ProxyApp.Build(config, "http://127.0.0.1:0"); await app.StartAsync(); });
        string all = string.Join("\n", e.Failures);
        Assert.Contains("LoPA:Clusters:chat:Dialect: 'tgi'", all);
        Assert.Contains("LoPA:Clusters:chat:HiddenSize", all);
        Assert.Contains("LoPA:Clusters:full:ModelPath", all);
        Assert.Contains("LoPA:Tenants:acme:ApiKeys:0", all);
        Assert.Contains("LoPA:Encoders: unknown encoder 'word2vec'", all);
    }

    [Fact]
    public async Task The_adapter_cache_is_bounded_and_follows_the_store()
    {
        await using var store = new LoPAProxy.Proxy.Store.SqliteTenancyStore(Path.Combine(TempDir.Create(), "s.db"));
        await store.InitializeAsync();
        await store.CreateTenantAsync("t");
        var options = Options.Create(new LoPAOptions { Adapters = new AdapterOptions { CacheSize = 2 } });
        var catalog = new AdapterCatalog(options, store);
        var config = new AdapterConfig
        {
            NumVirtualTokens = 2, TokenDim = 8, Rank = 1, HiddenSize = 4, Encoder = "fm-mean", EncoderDim = 8,
        };
        async Task Put(string name, string version, AdapterConfig c, int seed)
        {
            byte[] weights = LopaAdapter.CreateRandom(c, seed).ToSingleFile();
            await store.PutAdapterAsync("t", name, version, c.ToJson(), weights, c.TrainableParameters, true);
        }
        foreach (string name in new[] { "a", "b", "c" }) await Put(name, "1", config, name[0]);
        var a = await catalog.FindAsync("t", "a", default);
        Assert.Same(a, await catalog.FindAsync("t", "a", default));          // cached
        await catalog.FindAsync("t", "b", default);
        await catalog.FindAsync("t", "c", default);                             // evicts a (least recently used)
        Assert.Equal(2, catalog.Count);
        Assert.NotSame(a, await catalog.FindAsync("t", "a", default));       // reloaded
        // A new active version is served at once, a deleted name is gone, names cannot escape the tenant.
        var before = await catalog.FindAsync("t", "b", default);
        await Put("b", "2", config with { NumVirtualTokens = 3 }, 9);
        Assert.Equal(3, (await catalog.FindAsync("t", "b", default))!.Rows);
        Assert.Equal(2, (await catalog.FindAsync("t", "b@1", default))!.Rows);
        Assert.NotSame(before, await catalog.FindAsync("t", "b", default));
        await store.DeleteAdapterAsync("t", "c", null);
        Assert.Null(await catalog.FindAsync("t", "c", default));
        Assert.Null(await catalog.FindAsync("t", "..", default));
        Assert.Null(await catalog.FindAsync("..", "t", default));
    }

    [Fact]
    public async Task A_client_that_leaves_cancels_the_upstream_generation()
    {
        var scheduler = (LoPAProxy.ModelServer.Generation.GenerationScheduler)f.Reference.Services.GetService(typeof(LoPAProxy.ModelServer.Generation.GenerationScheduler))!;
        using var cts = new CancellationTokenSource();
        using var c = f.Client(ProxyFixture.AcmeKey);
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = "stories260K:story", messages = new[] { new { role = "user", content = "Once upon a time" } }, max_tokens = 400, temperature = 0.9, stream = true }),
        };
        var response = await c.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
        Assert.StartsWith("data: ", await reader.ReadLineAsync(cts.Token));
        Assert.True(scheduler.InFlight >= 1);
        cts.Cancel();
        response.Dispose();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (scheduler.InFlight != 0 && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(0, scheduler.InFlight);
    }

    [Fact]
    public async Task Stopping_the_proxy_drains_in_flight_streams()
    {
        var own = new SlowProxyFixture();
        await own.InitializeAsync();
        try
        {
            using var c = own.Client(ProxyFixture.AcmeKey);
            var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
            {
                Content = JsonContent.Create(new { model = "stories260K:story", messages = new[] { new { role = "user", content = "Once upon a time" } }, max_tokens = 40, temperature = 0, stream = true }),
            };
            using var response = await c.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: ", await reader.ReadLineAsync());
            Task stopping = own.Proxy.StopAsync(); // 40 tokens × 20 ms are still to come
            var lines = new List<string>();
            while (await reader.ReadLineAsync() is { } line) if (line.StartsWith("data: ", StringComparison.Ordinal)) lines.Add(line[6..]);
            await stopping;
            Assert.Equal("[DONE]", lines[^1]);
            Assert.True(lines.Count > 30, $"{lines.Count} events after shutdown began");
        }
        finally { await own.DisposeAsync(); }
    }

    [Theory]
    [InlineData("/v1/chat/completions")]
    [InlineData("/v1/completions")]
    public async Task Stream_chunks_are_forwarded_as_they_arrive_not_buffered(string path)
    {
        // 30 tokens at 20 ms each: buffering would hold the first event until the end (≥ 600 ms).
        using var c = f.Client(ProxyFixture.AcmeKey);
        object body = path.Contains("chat", StringComparison.Ordinal)
            ? new { model = "stories260K:story", messages = new[] { new { role = "user", content = "Once upon a time" } }, max_tokens = 30, temperature = 0, stream = true }
            : new { model = "stories260K:story", prompt = "Once upon a time", max_tokens = 30, temperature = 0, stream = true };
        (await c.PostAsync(path, JsonContent.Create(body))).Dispose(); // warm both servers' code paths first
        var sw = System.Diagnostics.Stopwatch.StartNew();
        using var response = await c.SendAsync(new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) }, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        double first = -1;
        var events = new List<string>();
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
            if (first < 0) first = sw.Elapsed.TotalMilliseconds;
            events.Add(line[6..]);
        }
        double last = sw.Elapsed.TotalMilliseconds;
        Assert.Equal("[DONE]", events[^1]);
        // Buffered, every event would arrive together at the end; forwarded as produced, they spread over the 600 ms.
        Assert.True(last - first >= 450, $"events arrived within {last - first:F0} ms of each other: the proxy buffered the stream");
    }
}
