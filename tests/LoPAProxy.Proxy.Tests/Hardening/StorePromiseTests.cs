using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Proxy.Tests.Store;

namespace LoPAProxy.Proxy.Tests.Hardening;

/// <summary>Issue 10's store defects as regression tests, on SQLite and on a real PostgreSQL.</summary>
public class StorePromiseTests
{
    private static async Task<(Dictionary<string, string?> Settings,
        IAsyncDisposable? Database)> StoreAsync(string kind)
    {
        if (kind == "sqlite")
        {
            return (new()
            {
                ["LoPA:Store:Kind"] = "sqlite", ["LoPA:Store:Path"] = Path.Combine(TempDir.Create(),
                "lopa.db")
            }, null);
        }

        ScratchDatabase db = await ScratchDatabase.CreateAsync("lopa_promises");
        return (new() { ["LoPA:Store:Kind"] = "postgres", ["LoPA:Store:ConnectionString"] = db.ConnectionString }, db);
    }

    private static async Task<(int Status, string Text)> SendAsync(HttpClient c, HttpMethod method, string path,
        HttpContent? content = null)
    {
        using HttpResponseMessage r = await c.SendAsync(new HttpRequestMessage(method, path) { Content = content });
        return ((int)r.StatusCode, await r.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task Concurrent_uploads_never_take_a_tenant_past_its_quota(string kind)
    {
        var (settings, database) = await StoreAsync(kind);
        await using (database)
        {
            await using StoreRig stack = await StoreRig.StartAsync(settings); // quota: 3 versions per tenant
            string key = await stack.NewTenantAsync("acme");
            using HttpClient c = stack.Client(key);
            var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(i =>
                SendAsync(c, HttpMethod.Post, "/v1/adapters", StoreRig.Upload($"a{i}", "1", StoreRig.Adapter(i)))));
            Assert.Equal(3, results.Count(r => r.Status == 201));
            Assert.All(results.Where(r => r.Status != 201), r =>
            {
                Assert.Equal(429, r.Status);
                HardeningFixture.IsError(r.Text, "quota_exceeded");
            });
            var (_, list) = await SendAsync(c, HttpMethod.Get, "/v1/adapters");
            Assert.Equal(3, JsonDocument.Parse(list).RootElement.GetProperty("data").GetArrayLength());
        }
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task An_acknowledged_activation_is_served_at_once_under_load(string kind)
    {
        var (settings, database) = await StoreAsync(kind);
        await using (database)
        {
            await using StoreRig stack = await StoreRig.StartAsync(settings);
            string key = await stack.NewTenantAsync("acme");
            using HttpClient c = stack.Client(key);
            Assert.Equal(201, (await SendAsync(c, HttpMethod.Post, "/v1/adapters", StoreRig.Upload("story", "1",
                StoreRig.Adapter(6)))).Status);
            Assert.Equal(201, (await SendAsync(c, HttpMethod.Post, "/v1/adapters",
                StoreRig.Upload("story", "2", StoreRig.Adapter(7), activate: false))).Status);
            string[] expected = { await AnswerAsync(c, "stories260K:story@1"), await AnswerAsync(c,
                "stories260K:story@2") };
            Assert.NotEqual(expected[0], expected[1]);

            using var stop = new CancellationTokenSource();
            Task[] load = Enumerable.Range(0, 4).Select(_ => LoadAsync(stack.Client(key), stop.Token)).ToArray();
            int stale = 0;
            for (int flip = 0; flip < 40; flip++)
            {
                int version = flip % 2 == 0 ? 2 : 1;
                var (status, text) = await SendAsync(c, HttpMethod.Post, "/v1/adapters/story/activate",
                    JsonContent.Create(new { version = version.ToString(CultureInfo.InvariantCulture) }));
                Assert.True(status == 200, text);
                if (await AnswerAsync(c, "stories260K:story") != expected[version - 1]) stale++;
            }
            await stop.CancelAsync();
            await Task.WhenAll(load);
            Assert.Equal(0, stale);
        }
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task Another_replica_serves_an_activation_within_the_documented_bound(string kind)
    {
        var (settings, database) = await StoreAsync(kind);
        settings["LoPA:Adapters:RevalidateSeconds"] = "1";
        await using (database)
        {
            // Two proxies on one store: PostgreSQL tells the other at once; on one SQLite file it revalidates (1 s
            // here).
            await using StoreRig stack = await StoreRig.StartAsync(settings, replicas: 2);
            string key = await stack.NewTenantAsync("acme");
            using HttpClient one = stack.Client(key, 0), two = stack.Client(key, 1);
            Assert.Equal(201, (await SendAsync(one, HttpMethod.Post, "/v1/adapters", StoreRig.Upload("story", "1",
                StoreRig.Adapter(6)))).Status);
            Assert.Equal(201, (await SendAsync(one, HttpMethod.Post, "/v1/adapters",
                StoreRig.Upload("story", "2", StoreRig.Adapter(7), activate: false))).Status);
            string[] expected = { await AnswerAsync(two, "stories260K:story@1"), await AnswerAsync(two,
                "stories260K:story@2") };
            using var stop = new CancellationTokenSource();
            Task[] load = Enumerable.Range(0, 2).Select(_ => LoadAsync(stack.Client(key, 1), stop.Token)).ToArray();
            // The promise: no request that *starts* later than the bound after the acknowledgement gets the old version
            // (a request started before it may still be answered from the old one; 0.3 s of scheduling slack).
            const double Bound = 1.0, Slack = 0.3;
            for (int flip = 0; flip < 10; flip++)
            {
                int version = flip % 2 == 0 ? 2 : 1;
                Assert.Equal(200, (await SendAsync(one, HttpMethod.Post, "/v1/adapters/story/activate",
                    JsonContent.Create(new { version = version.ToString(CultureInfo.InvariantCulture) }))).Status);
                var sinceAck = Stopwatch.StartNew();
                while (true)
                {
                    double started = sinceAck.Elapsed.TotalSeconds;
                    if (await AnswerAsync(two, "stories260K:story") == expected[version - 1]) break;
                    Assert.True(started < Bound + Slack,
                        $"a request started {started:F2} s after the acknowledgement got the old version (bound {Bound} s)");
                    await Task.Delay(20);
                }
            }
            await stop.CancelAsync();
            await Task.WhenAll(load);
        }
    }

    private static async Task<string> AnswerAsync(HttpClient c, string model)
    {
        using HttpResponseMessage r = await c.PostAsJsonAsync("/v1/chat/completions", new
        {
            model, max_tokens = 6, temperature = 0, messages = new[] { new { role = "user",
                content = "Tom had a red kite" } },
        });
        string text = await r.Content.ReadAsStringAsync();
        Assert.True(r.IsSuccessStatusCode, text);
        return JsonDocument.Parse(text).RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
    }

    private static async Task LoadAsync(HttpClient c, CancellationToken stop)
    {
        using (c)
        {
            while (!stop.IsCancellationRequested) await AnswerAsync(c, "stories260K:story");
        }
    }

    [Fact]
    public async Task An_adapter_over_the_openai_body_limit_uploads_under_the_upload_limit()
    {
        var (settings, _) = await StoreAsync("sqlite");
        settings["LoPA:Quotas:MaxUploadBytes"] = (256L << 20)
            .ToString(CultureInfo.InvariantCulture); // the documented default
        await using StoreRig stack = await StoreRig.StartAsync(settings);
        string key = await stack.NewTenantAsync("acme");
        using HttpClient c = stack.Client(key);
        var config = new AdapterConfig
        {
            NumVirtualTokens = 10, TokenDim = 64, Rank = 4, HiddenSize = 8192,
            Encoder = "fm-mean", EncoderDim = 64
        };
        LopaAdapter big = LopaAdapter.CreateRandom(config, 3);
        byte[] file = big.ToSingleFile();
        Assert.True(file.Length > 9 << 20, $"{file.Length} bytes"); // over Limits:MaxBodyBytes (4 MiB)
        var (status, text) = await SendAsync(c, HttpMethod.Post, "/v1/adapters", StoreRig.Upload("big", "1", big,
            single: true));
        Assert.True(status == 201, text);
        // The OpenAI routes keep their own, smaller limit.
        var (chatStatus, chatText) = await SendAsync(c, HttpMethod.Post, "/v1/chat/completions",
            new StringContent(new string(' ', 5 << 20) + "{}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(413, chatStatus);
        HardeningFixture.IsError(chatText, "body_too_large");
    }

    [Fact]
    public async Task An_upload_that_could_never_be_served_is_a_422_that_says_why()
    {
        var (settings, _) = await StoreAsync("sqlite");
        await using StoreRig stack = await StoreRig.StartAsync(settings);
        string key = await stack.NewTenantAsync("acme");
        using HttpClient c = stack.Client(key);
        LopaAdapter wrongWidth = LoPAProxy.Core.Tests.GeneratorTests.Random(new AdapterConfig
        {
            NumVirtualTokens = 4, TokenDim = 64, Rank = 2, HiddenSize = 16, Encoder = "fm-mean", EncoderDim = 512,
        }, 1);
        var (s1, t1) = await SendAsync(c, HttpMethod.Post, "/v1/adapters", StoreRig.Upload("wide", "1", wrongWidth));
        Assert.Equal(422, s1);
        Assert.Contains("512", HardeningFixture.IsError(t1, "adapter_incompatible").GetProperty("message").GetString());
        LopaAdapter needsBert = LoPAProxy.Core.Tests.GeneratorTests.Random(new AdapterConfig
        {
            NumVirtualTokens = 4, TokenDim = 64, Rank = 2, HiddenSize = 16, Encoder = "bert", EncoderDim = 384,
        }, 2);
        var (s2, t2) = await SendAsync(c, HttpMethod.Post, "/v1/adapters", StoreRig.Upload("bert", "1", needsBert));
        Assert.Equal(422, s2); // "bert" (the retired engine encoder) is not an encoder this proxy has
        Assert.Contains("does not have", HardeningFixture.IsError(t2,
            "adapter_incompatible").GetProperty("message").GetString());
        var (_, list) = await SendAsync(c, HttpMethod.Get, "/v1/adapters");
        Assert.Equal(0, JsonDocument.Parse(list).RootElement.GetProperty("data").GetArrayLength());
    }

    public static TheoryData<string, string> MalformedForms => new()
    {
        { "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nx" },
        { "multipart/form-data; boundary=b",
            "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.safetensors\"\r\n" },
        { "multipart/form-data; boundary=b", "--b\r\nno colon here\r\n\r\nx\r\n--b--\r\n" },
        { "multipart/form-data", "--b\r\n\r\nx\r\n--b--\r\n" },
        { "multipart/form-data; boundary=", "x" },
        { "multipart/form-data; boundary=b", "" },
        { "multipart/form-data; boundary=b", "--b--\r\n" },
        { "application/x-www-form-urlencoded", "name=%%%&version=1" },
    };

    [Theory]
    [MemberData(nameof(MalformedForms))]
    public async Task Malformed_multipart_bodies_are_a_400(string contentType, string body)
    {
        var (settings, _) = await StoreAsync("sqlite");
        await using StoreRig stack = await StoreRig.StartAsync(settings);
        string key = await stack.NewTenantAsync("acme");
        using HttpClient c = stack.Client(key);
        var content = new ByteArrayContent(System.Text.Encoding.UTF8.GetBytes(body));
        content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        var (status, text) = await SendAsync(c, HttpMethod.Post, "/v1/adapters", content);
        Assert.True(status == 400, $"{status}: {text}");
        Assert.Equal("invalid_request_error",
            JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task Duplicate_keys_in_admin_and_activation_bodies_are_a_400()
    {
        var (settings, _) = await StoreAsync("sqlite");
        await using StoreRig stack = await StoreRig.StartAsync(settings);
        string key = await stack.NewTenantAsync("acme");
        using HttpClient admin = stack.Client(StoreRig.AdminKey), tenant = stack.Client(key);
        var (s1, t1) = await SendAsync(admin, HttpMethod.Post, "/admin/tenants",
            new StringContent("""{"name":"a","name":"b"}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(400, s1);
        HardeningFixture.IsError(t1, "invalid_json");
        Assert.Equal(201, (await SendAsync(tenant, HttpMethod.Post, "/v1/adapters", StoreRig.Upload("s", "1",
            StoreRig.Adapter(1)))).Status);
        var (s2, t2) = await SendAsync(tenant, HttpMethod.Post, "/v1/adapters/s/activate",
            new StringContent("""{"version":"1","version":"2"}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(400, s2);
        HardeningFixture.IsError(t2, "invalid_json");
    }

    [Fact]
    public async Task An_unexpected_failure_is_an_openai_500_naming_the_request_id()
    {
        string dir = TempDir.Create(), path = Path.Combine(dir, "lopa.db");
        await using StoreRig stack = await StoreRig.StartAsync(new()
        {
            ["LoPA:Store:Kind"] = "sqlite",
            ["LoPA:Store:Path"] = path
        });
        string key = await stack.NewTenantAsync("acme");
        // The database file turns to garbage under the running proxy (a disk fault, a bad restore).
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        foreach (string file in Directory.GetFiles(dir))
        {
            File.WriteAllBytes(file, new byte[64 * 1024].Select((_, i) =>
            (byte)(i * 7)).ToArray());
        }

        using HttpClient c = stack.Client(key);
        using HttpResponseMessage r = await c.GetAsync("/v1/adapters");
        string text = await r.Content.ReadAsStringAsync();
        Assert.Equal(500, (int)r.StatusCode);
        JsonElement error = HardeningFixture.IsError(text, "internal_error");
        string id = r.Headers.GetValues("x-request-id").Single();
        Assert.Contains(id, error.GetProperty("message").GetString());
        Assert.DoesNotContain("Sqlite", text, StringComparison.OrdinalIgnoreCase); // no internals leak
    }
}
