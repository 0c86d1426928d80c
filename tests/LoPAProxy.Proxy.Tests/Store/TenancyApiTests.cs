using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.ModelServer;
using LoPAProxy.Proxy.Observability;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace LoPAProxy.Proxy.Tests.Store;

/// <summary>A model server and proxies whose tenants, keys and adapters live in a store.</summary>
public sealed class StoreRig : IAsyncDisposable
{
    public const string AdminKey = "admin-key-0123456789abcdef";
    public WebApplication Reference { get; private set; } = null!;
    public List<WebApplication> Proxies { get; } = new();

    /// <param name="clock">The proxies' clock (limits, budgets and usage buckets), the system's by default.</param>
    /// <param name="delayPerTokenMs">Slows the model server (keeps streams in flight).</param>
    public static async Task<StoreRig> StartAsync(Dictionary<string, string?> store, int replicas = 1,
        TimeProvider? clock = null, int delayPerTokenMs = 0)
    {
        var s = new StoreRig();
        s.Reference = ModelServerApp.Build(new ModelServerOptions
        {
            ModelPath = "unused", Port = 0, DelayPerTokenMs = delayPerTokenMs,
        }, ProxyFixture.Stories.Value);
        await s.Reference.StartAsync();
        string model = SharedFiles.Path_("models", "stories260K", "stories260K.bin");
        for (int i = 0; i < replicas; i++)
        {
            var settings = new Dictionary<string, string?>
            {
                ["ReverseProxy:Routes:chat:ClusterId"] = "chat",
                ["ReverseProxy:Routes:chat:Match:Path"] = "/v1/chat/completions",
                ["ReverseProxy:Routes:models:ClusterId"] = "chat",
                ["ReverseProxy:Routes:models:Match:Path"] = "/v1/models",
                ["ReverseProxy:Routes:completions:ClusterId"] = "completions",
                ["ReverseProxy:Routes:completions:Match:Path"] = "/v1/completions",
                ["ReverseProxy:Clusters:chat:Destinations:d1:Address"] = s.Reference.Urls.First(),
                ["ReverseProxy:Clusters:completions:Destinations:d1:Address"] = s.Reference.Urls.First(),
                ["LoPA:Clusters:completions:Dialect"] = "vllm-completions",
                ["LoPA:Clusters:completions:Model"] = "stories260K",
                ["LoPA:Clusters:completions:HiddenSize"] = "64", ["LoPA:Clusters:completions:ModelPath"] = model,
                ["LoPA:Clusters:chat:Dialect"] = "vllm-chat", ["LoPA:Clusters:chat:Model"] = "stories260K",
                ["LoPA:Clusters:chat:HiddenSize"] = "64",
                ["LoPA:Encoders:0"] = "fm-mean", ["LoPA:EncoderFiles:FoundationModel"] = model,
                ["LoPA:AdminKey"] = AdminKey, ["LoPA:Quotas:MaxAdaptersPerTenant"] = "3",
                ["LoPA:Quotas:MaxUploadBytes"] = "200000",
            };
            foreach (var (key, value) in store) settings[key] = value; // the caller's settings win
            var proxy = ProxyApp.Build(new ConfigurationBuilder().AddInMemoryCollection(settings).Build(),
                "http://127.0.0.1:0", services =>
                {
                    if (clock is not null) services.AddSingleton(clock);
                });
            await proxy.StartAsync();
            s.Proxies.Add(proxy);
        }
        return s;
    }

    public HttpClient Client(string? key, int replica = 0)
    {
        var c = new HttpClient { BaseAddress = new Uri(Proxies[replica].Urls.First()) };
        if (key != null) c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return c;
    }

    /// <summary>A client of a replica's management listener (/metrics, /healthz, /readyz).</summary>
    public HttpClient ManagementClient(int replica = 0) => new()
    {
        BaseAddress = new Uri(Proxies[replica].Services.GetRequiredService<ManagementListener>().Urls[0]),
    };

    public async Task<string> NewTenantAsync(string name)
    {
        using var admin = Client(AdminKey);
        Assert.Equal(201, (int)(await admin.PostAsJsonAsync("/admin/tenants", new { name })).StatusCode);
        using var r = await admin.PostAsync($"/admin/tenants/{name}/keys", null);
        Assert.Equal(201, (int)r.StatusCode);
        return JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("key").GetString()!;
    }

    public static MultipartFormDataContent Upload(string name, string version, LopaAdapter adapter,
        bool single = false, bool activate = true)
    {
        var form = new MultipartFormDataContent { { new StringContent(name), "name" }, { new StringContent(version),
            "version" }, { new StringContent(activate ? "true" : "false"), "activate" } };
        if (single)
        {
            form.Add(new ByteArrayContent(adapter.ToSingleFile()), "file", "adapter.safetensors");
        }
        else
        {
            string dir = TempDir.Create();
            adapter.SaveDirectory(dir);
            form.Add(new ByteArrayContent(File.ReadAllBytes(Path.Combine(dir, LopaAdapter.ConfigFile))), "config",
                LopaAdapter.ConfigFile);
            form.Add(new ByteArrayContent(File.ReadAllBytes(Path.Combine(dir, LopaAdapter.WeightsFile))), "weights",
                LopaAdapter.WeightsFile);
        }
        return form;
    }

    public static LopaAdapter Adapter(int seed, int d = 64) => LoPAProxy.Core.Tests.GeneratorTests.Random(
        new AdapterConfig
        {
            NumVirtualTokens = 4, TokenDim = d, Rank = 2, HiddenSize = 16, Encoder = "fm-mean",
            EncoderDim = 64
        }, seed);

    public async ValueTask DisposeAsync()
    {
        foreach (var p in Proxies) { await p.StopAsync(); await p.DisposeAsync(); }
        await Reference.StopAsync();
        await Reference.DisposeAsync();
    }
}

public class TenancyApiTests
{
    private static Dictionary<string, string?> Sqlite() => new()
    {
        ["LoPA:Store:Kind"] = "sqlite",
        ["LoPA:Store:Path"] = Path.Combine(TempDir.Create(), "lopa.db")
    };

    private static async Task<(int Status, JsonElement Body)> Send(HttpClient c, HttpMethod method, string path,
        HttpContent? content = null)
    {
        using var r = await c.SendAsync(new HttpRequestMessage(method, path) { Content = content });
        string text = await r.Content.ReadAsStringAsync();
        return ((int)r.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    private static object Chat(string model) => new
    {
        model, messages = new[] { new { role = "user",
        content = "Tom had a red kite" } }, max_tokens = 6, temperature = 0
    };

    [Fact]
    public async Task Upload_list_get_activate_delete_and_serve_by_name_or_version()
    {
        await using var stack = await StoreRig.StartAsync(Sqlite());
        string key = await stack.NewTenantAsync("acme");
        using var c = stack.Client(key);
        var (s1, b1) = await Send(c, HttpMethod.Post, "/v1/adapters", StoreRig.Upload("story", "1",
            StoreRig.Adapter(1)));
        Assert.Equal(201, s1);
        Assert.True(b1.GetProperty("adapter").GetProperty("active").GetBoolean());
        var (s2, _) = await Send(c, HttpMethod.Post, "/v1/adapters", StoreRig.Upload("story", "2",
            StoreRig.Adapter(2), single: true, activate: false));
        Assert.Equal(201, s2);
        var (_, list) = await Send(c, HttpMethod.Get, "/v1/adapters");
        Assert.Equal(new[] { "story@1", "story@2" }, list.GetProperty("data").EnumerateArray().Select(a =>
            a.GetProperty("id").GetString()));
        var (_, got) = await Send(c, HttpMethod.Get, "/v1/adapters/story@2");
        Assert.Equal(4, got.GetProperty("config").GetProperty("num_virtual_tokens").GetInt32());
        Assert.Equal(64, got.GetProperty("adapter").GetProperty("sha256").GetString()!.Length);

        // Served by name (the active version) and by name@version; activation switches what the name means.
        async Task<string> Answer(string model)
        {
            var r = await c.PostAsJsonAsync("/v1/chat/completions",
            Chat(model)); Assert.Equal(200,
                (int)r.StatusCode); return JsonDocument.Parse(await r.Content.ReadAsStringAsync())
                    .RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        }
        string v1 = await Answer("stories260K:story@1"), v2 = await Answer("stories260K:story@2");
        Assert.NotEqual(v1, v2);
        Assert.Equal(v1, await Answer("stories260K:story"));
        Assert.Equal(200, (await Send(c, HttpMethod.Post, "/v1/adapters/story/activate",
            JsonContent.Create(new { version = "2" }))).Status);
        Assert.Equal(v2, await Answer("stories260K:story"));
        Assert.Equal(204, (await Send(c, HttpMethod.Delete, "/v1/adapters/story@2")).Status);
        Assert.Equal(404, (int)(await c.PostAsJsonAsync("/v1/chat/completions",
            Chat("stories260K:story"))).StatusCode); // no active version now
        Assert.Equal(204, (await Send(c, HttpMethod.Delete, "/v1/adapters/story")).Status);
        Assert.Empty((await Send(c, HttpMethod.Get, "/v1/adapters")).Body.GetProperty("data").EnumerateArray());
    }

    [Fact]
    public async Task No_endpoint_lets_one_tenant_see_or_touch_anothers_adapters()
    {
        await using var stack = await StoreRig.StartAsync(Sqlite());
        string a = await stack.NewTenantAsync("acme"), b = await stack.NewTenantAsync("globex");
        using var ca = stack.Client(a);
        using var cb = stack.Client(b);
        Assert.Equal(201, (await Send(ca, HttpMethod.Post, "/v1/adapters", StoreRig.Upload("secret", "1",
            StoreRig.Adapter(3)))).Status);
        Assert.Empty((await Send(cb, HttpMethod.Get, "/v1/adapters")).Body.GetProperty("data").EnumerateArray());
        foreach (var (method, path, content) in new (HttpMethod, string, HttpContent?)[]
        {
            (HttpMethod.Get, "/v1/adapters/secret", null), (HttpMethod.Get, "/v1/adapters/secret@1", null),
            (HttpMethod.Delete, "/v1/adapters/secret", null), (HttpMethod.Delete, "/v1/adapters/secret@1", null),
            (HttpMethod.Post, "/v1/adapters/secret/activate", JsonContent.Create(new { version = "1" })),
            (HttpMethod.Post, "/v1/chat/completions", JsonContent.Create(Chat("stories260K:secret"))),
            (HttpMethod.Post, "/v1/chat/completions", JsonContent.Create(Chat("stories260K:secret@1"))),
        })
        {
            var (status, body) = await Send(cb, method, path, content);
            Assert.True(status == 404, $"{method} {path} gave {status}");
            Assert.Equal("adapter_not_found", body.GetProperty("error").GetProperty("code").GetString());
        }
        Assert.Equal(200, (int)(await ca.PostAsJsonAsync("/v1/chat/completions",
            Chat("stories260K:secret"))).StatusCode); // still there for its owner
        // A tenant's key is no admin key; a disabled tenant's key stops working.
        Assert.Equal(401, (await Send(ca, HttpMethod.Get, "/admin/tenants")).Status);
        using var admin = stack.Client(StoreRig.AdminKey);
        Assert.Equal(200, (int)(await admin.PostAsync("/admin/tenants/acme/disable", null)).StatusCode);
        Assert.Equal(401, (await Send(ca, HttpMethod.Get, "/v1/adapters")).Status);
    }

    [Fact]
    public async Task Bad_uploads_are_4xx_and_store_nothing()
    {
        await using var stack = await StoreRig.StartAsync(Sqlite());
        string key = await stack.NewTenantAsync("acme");
        using var c = stack.Client(key);
        var good = StoreRig.Adapter(4);
        async Task Expect(int status, string code, HttpContent content)
        {
            var (s, body) = await Send(c, HttpMethod.Post, "/v1/adapters", content);
            Assert.True(s == status, $"expected {status} ({code}), got {s}: {body}");
            Assert.Equal(code, body.GetProperty("error").GetProperty("code").GetString());
        }
        byte[] single = good.ToSingleFile();
        await Expect(400, "invalid_adapter", new MultipartFormDataContent { { new StringContent("x"), "name" },
            { new StringContent("1"), "version" }, { new ByteArrayContent(single[..(single.Length / 2)]), "f",
            "a.safetensors" } });
        var nan = new LopaAdapter(good.Config, good.PromptEmbeddings!.Select((v, i) => i == 3 ? 0f : v).ToArray(),
            good.U, good.V, null);
        byte[] nanBytes = nan.ToSingleFile();
        int at = nanBytes.Length - 4; BitConverter.GetBytes(float.NaN).CopyTo(nanBytes, at); // poison the last float
        await Expect(400, "invalid_adapter", new MultipartFormDataContent { { new StringContent("x"), "name" },
            { new StringContent("1"), "version" }, { new ByteArrayContent(nanBytes), "f", "a.safetensors" } });
        await Expect(422, "adapter_incompatible", StoreRig.Upload("wide", "1", StoreRig.Adapter(5, d: 32)));
        // A config that disagrees with its tensors: d = 64 config, d = 32 weights.
        string cfgDir = TempDir.Create(), wDir = TempDir.Create();
        good.SaveDirectory(cfgDir);
        StoreRig.Adapter(6, d: 32).SaveDirectory(wDir);
        await Expect(400, "invalid_adapter", new MultipartFormDataContent { { new StringContent("mix"), "name" },
            { new StringContent("1"), "version" },
            { new ByteArrayContent(File.ReadAllBytes(Path.Combine(cfgDir, LopaAdapter.ConfigFile))), "c",
                LopaAdapter.ConfigFile },
            { new ByteArrayContent(File.ReadAllBytes(Path.Combine(wDir, LopaAdapter.WeightsFile))), "w",
                LopaAdapter.WeightsFile } });
        // Oversize (this stack allows 200,000 bytes per upload).
        var big = LopaAdapter.CreateRandom(new AdapterConfig
        {
            NumVirtualTokens = 10, TokenDim = 64, Rank = 4,
            HiddenSize = 1024, Encoder = "fm-mean", EncoderDim = 64
        }, 7);
        await Expect(413, "body_too_large", StoreRig.Upload("big", "1", big, single: true));
        await Expect(400, "invalid_request", new MultipartFormDataContent { { new StringContent("x"), "name" },
            { new ByteArrayContent(single), "f", "a.safetensors" } }); // no version
        await Expect(400, "invalid_multipart", new StringContent("not a form"));
        var (bad, _) = await Send(c, HttpMethod.Post, "/v1/adapters",
            new ByteArrayContent("--broken\r\nnonsense"u8.ToArray()) { Headers = { ContentType = MediaTypeHeaderValue.Parse("multipart/form-data; boundary=broken") } });
        Assert.Equal(400, bad);
        Assert.Empty((await Send(c, HttpMethod.Get,
            "/v1/adapters")).Body.GetProperty("data").EnumerateArray()); // nothing stored
        Assert.Equal(201, (await Send(c, HttpMethod.Post, "/v1/adapters", StoreRig.Upload("ok", "1", good))).Status);
        await Expect(409, "conflict", StoreRig.Upload("ok", "1", good));
        Assert.Equal(201, (await Send(c, HttpMethod.Post, "/v1/adapters", StoreRig.Upload("ok", "2", good))).Status);
        Assert.Equal(201, (await Send(c, HttpMethod.Post, "/v1/adapters", StoreRig.Upload("ok", "3", good))).Status);
        await Expect(429, "quota_exceeded", StoreRig.Upload("ok", "4", good)); // 3 versions per tenant in this stack
        Assert.Equal(404, (await Send(c, HttpMethod.Get, "/v1/adapters/ok@9")).Status);
        using var admin = stack.Client(StoreRig.AdminKey);
        Assert.Equal(404, (await Send(admin, HttpMethod.Post, "/admin/tenants/nobody/keys")).Status);
        Assert.Equal(404, (await Send(admin, HttpMethod.Post, "/admin/tenants/nobody/disable")).Status);
    }

    [Fact]
    public async Task With_postgres_a_change_through_one_replica_reaches_the_others_cache()
    {
        await using ScratchDatabase db = await ScratchDatabase.CreateAsync("lopa_replicas");
        await using var stack = await StoreRig.StartAsync(new()
        {
            ["LoPA:Store:Kind"] = "postgres",
            ["LoPA:Store:ConnectionString"] = db.ConnectionString
        }, replicas: 2);
        string key = await stack.NewTenantAsync("acme");
        using var one = stack.Client(key, 0);
        using var two = stack.Client(key, 1);
        Assert.Equal(201, (await Send(one, HttpMethod.Post, "/v1/adapters", StoreRig.Upload("story", "1",
            StoreRig.Adapter(6)))).Status);
        Assert.Equal(201, (await Send(one, HttpMethod.Post, "/v1/adapters", StoreRig.Upload("story", "2",
            StoreRig.Adapter(7), activate: false))).Status);
        async Task<string> Answer(HttpClient c, string model) =>
            JsonDocument.Parse(await (await c.PostAsJsonAsync("/v1/chat/completions",
            Chat(model))).Content.ReadAsStringAsync()).RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        string v1 = await Answer(two, "stories260K:story"), v2 = await Answer(two,
            "stories260K:story@2"); // replica two caches both
        Assert.NotEqual(v1, v2);
        Assert.Equal(200, (await Send(one, HttpMethod.Post, "/v1/adapters/story/activate",
            JsonContent.Create(new { version = "2" }))).Status);
        var deadline = DateTime.UtcNow.AddSeconds(5);
        string now = v1;
        while (now != v2 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50); now = await Answer(two,
            "stories260K:story");
        }
        Assert.Equal(v2, now); // replica two dropped its cached "story" when replica one activated version 2
    }
}
