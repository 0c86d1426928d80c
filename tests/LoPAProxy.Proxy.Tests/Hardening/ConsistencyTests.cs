using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LoPAProxy.Proxy.Tests.Limits;
using LoPAProxy.Proxy.Tests.Store;

namespace LoPAProxy.Proxy.Tests.Hardening;

/// <summary>#22 item 7: small inconsistencies an attack run found, each a typed answer now.</summary>
public class ConsistencyTests
{
    private static async Task<(int Status, string Text)> SendAsync(HttpClient c, HttpMethod method, string path,
        HttpContent? content = null)
    {
        using HttpResponseMessage r = await c.SendAsync(new HttpRequestMessage(method, path) { Content = content });
        return ((int)r.StatusCode, await r.Content.ReadAsStringAsync());
    }

    private static MultipartFormDataContent Upload(string version, string activate) => new()
    {
        { new StringContent("story"), "name" }, { new StringContent(version), "version" },
        { new StringContent(activate), "activate" },
        { new ByteArrayContent(StoreRig.Adapter(1).ToSingleFile()), "file", "adapter.safetensors" },
    };

    [Fact]
    public async Task Activate_is_true_or_false_and_nothing_else()
    {
        await using StoreRig stack = await StoreRig.StartAsync(RateLimitHttpTests.Sqlite());
        using HttpClient c = stack.Client(await stack.NewTenantAsync("acme"));
        foreach (string wrong in new[] { "0", "no", "1", "yes", "" })
        {
            var (status, text) = await SendAsync(c, HttpMethod.Post, "/v1/adapters", Upload("1", wrong));
            Assert.True(status == 400, $"activate={wrong}: {status} {text}");
            HardeningFixture.IsError(text, "invalid_request");
        }
        Assert.Equal(0, JsonDocument.Parse(await c.GetStringAsync("/v1/adapters")).RootElement.GetProperty("data")
            .GetArrayLength());
        Assert.Equal(201, (await SendAsync(c, HttpMethod.Post, "/v1/adapters", Upload("1", "false"))).Status);
        Assert.Equal(201, (await SendAsync(c, HttpMethod.Post, "/v1/adapters", Upload("2", "true"))).Status);
        JsonElement[] versions = JsonDocument.Parse(await c.GetStringAsync("/v1/adapters")).RootElement
            .GetProperty("data").EnumerateArray().ToArray();
        Assert.Equal(new[] { false, true }, versions.Select(v => v.GetProperty("active").GetBoolean()));
    }

    [Fact]
    public async Task Admin_calls_on_unknown_tenants_and_bodies_without_json_are_typed_errors()
    {
        await using StoreRig stack = await StoreRig.StartAsync(RateLimitHttpTests.Sqlite());
        using HttpClient admin = stack.Client(StoreRig.AdminKey);
        var (keys, keysText) = await SendAsync(admin, HttpMethod.Get, "/admin/tenants/nobody/keys");
        Assert.Equal(404, keys);
        HardeningFixture.IsError(keysText, "not_found");

        var (plain, plainText) = await SendAsync(admin, HttpMethod.Post, "/admin/tenants",
            new StringContent("""{"name":"acme"}""", Encoding.UTF8, "text/plain"));
        Assert.Equal(415, plain);
        HardeningFixture.IsError(plainText, "unsupported_media_type");
        var bare = new ByteArrayContent(Encoding.UTF8.GetBytes("""{"name":"acme"}"""));
        var (none, noneText) = await SendAsync(admin, HttpMethod.Post, "/admin/tenants", bare);
        Assert.Equal(415, none);
        HardeningFixture.IsError(noneText, "unsupported_media_type");
        Assert.Equal(201, (int)(await admin.PostAsJsonAsync("/admin/tenants", new { name = "acme" })).StatusCode);
    }

    /// <summary>#25 item 6: the context error counts the prompt as the backend does (it said 32 where usage said
    /// 31: the proxy measured a trailing newline the plain template does not add).</summary>
    [Fact]
    public async Task The_context_error_counts_the_prompt_tokens_usage_reports()
    {
        // With the model's files the proxy measures chat prompts itself and refuses over-context ones before the
        // backend sees them.
        await using StoreRig stack = await StoreRig.StartAsync(RateLimitHttpTests.Sqlite(
            ("LoPA:Clusters:chat:ModelPath", LoPAProxy.Engine.Tests.Support.SharedFiles.Path_("models", "stories260K",
                "stories260K.bin"))));
        using HttpClient c = stack.Client(await stack.NewTenantAsync("acme"));
        object Chat(int maxTokens) => new
        {
            model = "stories260K", max_tokens = maxTokens, temperature = 0,
            messages = new[]
            {
                new { role = "user", content = "Tom had a red kite." },
                new { role = "assistant", content = "It flew high." },
                new { role = "user", content = "Then what happened?" },
            },
        };
        var (ok, okText) = await SendAsync(c, HttpMethod.Post, "/v1/chat/completions", JsonContent.Create(Chat(2)));
        Assert.True(ok == 200, okText);
        int used = JsonDocument.Parse(okText).RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32();
        var (over, overText) = await SendAsync(c, HttpMethod.Post, "/v1/chat/completions",
            JsonContent.Create(Chat(512)));
        Assert.Equal(400, over);
        string message = HardeningFixture.IsError(overText, "context_length_exceeded").GetProperty("message")
            .GetString()!;
        Assert.True(message.Contains($"you requested {used} prompt tokens", StringComparison.Ordinal), message);
    }

    [Fact]
    public async Task An_unserved_openai_endpoint_says_so_and_names_what_is_served()
    {
        await using StoreRig stack = await StoreRig.StartAsync(RateLimitHttpTests.Sqlite());
        using HttpClient c = stack.Client(await stack.NewTenantAsync("acme"));
        foreach (string path in new[] { "/v1/embeddings", "/v1/audio/speech", "/v1/images/generations" })
        {
            var (status, text) = await SendAsync(c, HttpMethod.Post, path,
                JsonContent.Create(new { model = "stories260K", input = "x" }));
            Assert.Equal(404, status);
            string message = HardeningFixture.IsError(text, "route_not_found").GetProperty("message").GetString()!;
            Assert.Contains($"does not serve POST {path}", message);
            Assert.Contains("/v1/chat/completions", message);
            Assert.Contains("/v1/responses", message);
        }
    }

    [Fact]
    public async Task A_generation_request_names_its_model_and_an_adapter_only_on_its_own_base()
    {
        await using StoreRig stack = await StoreRig.StartAsync(RateLimitHttpTests.Sqlite());
        using HttpClient c = stack.Client(await stack.NewTenantAsync("acme"));
        Assert.Equal(201, (int)(await c.PostAsync("/v1/adapters", StoreRig.Upload("story", "1",
            StoreRig.Adapter(1)))).StatusCode);
        var (other, otherText) = await SendAsync(c, HttpMethod.Post, "/v1/chat/completions",
            JsonContent.Create(HardeningFixture.Chat("other-model:story")));
        Assert.Equal(404, other);
        HardeningFixture.IsError(otherText, "model_not_found");
        var (plainModel, _) = await SendAsync(c, HttpMethod.Post, "/v1/chat/completions",
            JsonContent.Create(HardeningFixture.Chat("other-model")));
        Assert.Equal(404, plainModel); // the backend's own answer for a model it does not serve
        foreach (string body in new[]
        {
            """{"messages":[{"role":"user","content":"hi"}]}""",
            """{"model":null,"messages":[{"role":"user","content":"hi"}]}""",
            """{"model":"","prompt":"hi"}""",
        })
        {
            string path = body.Contains("prompt") ? "/v1/completions" : "/v1/chat/completions";
            var (status, text) = await SendAsync(c, HttpMethod.Post, path, new StringContent(body, Encoding.UTF8,
                "application/json"));
            Assert.True(status == 400, $"{body}: {status} {text}");
            HardeningFixture.IsError(text, "missing_model");
        }
        var (ok, okText) = await SendAsync(c, HttpMethod.Post, "/v1/chat/completions",
            JsonContent.Create(HardeningFixture.Chat("stories260K:story")));
        Assert.True(ok == 200, okText);

        // GET /v1/models/{id}: the caller's own models; another tenant's adapter is simply not there.
        var (mine, mineText) = await SendAsync(c, HttpMethod.Get, "/v1/models/stories260K:story");
        Assert.True(mine == 200, mineText);
        Assert.Equal("stories260K:story", JsonDocument.Parse(mineText).RootElement.GetProperty("id").GetString());
        Assert.Equal(200, (await SendAsync(c, HttpMethod.Get, "/v1/models/stories260K")).Status);
        using HttpClient globex = stack.Client(await stack.NewTenantAsync("globex"));
        var (theirs, theirsText) = await SendAsync(globex, HttpMethod.Get, "/v1/models/stories260K:story");
        Assert.Equal(404, theirs);
        HardeningFixture.IsError(theirsText, "model_not_found");
    }
}
