using System.Text.Json;

namespace LoPAProxy.Proxy.Tests;

public class ProxyErrorTests(ProxyFixture f) : IClassFixture<ProxyFixture>
{
    private static object Chat(string model, string content = "Tom had a red kite") => new { model, messages = new[] { new { role = "user", content } }, max_tokens = 4 };

    private static void IsError(JsonElement body, string code)
    {
        JsonElement e = body.GetProperty("error");
        Assert.Equal(code, e.GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(e.GetProperty("message").GetString()));
        Assert.True(e.TryGetProperty("type", out _) && e.TryGetProperty("param", out _));
    }

    [Fact]
    public async Task Missing_or_wrong_keys_are_401()
    {
        var (s1, b1) = await f.Post(null, "/v1/chat/completions", Chat("stories260K"));
        var (s2, b2) = await f.Post("not-a-real-key-at-all-0000", "/v1/chat/completions", Chat("stories260K:story"));
        Assert.Equal((401, 401), (s1, s2));
        IsError(b1, "invalid_api_key");
        IsError(b2, "invalid_api_key");
    }

    [Fact]
    public async Task Unknown_adapters_and_other_tenants_adapters_are_the_same_404()
    {
        var (s1, b1) = await f.Post(ProxyFixture.AcmeKey, "/v1/chat/completions", Chat("stories260K:nope"));
        var (s2, b2) = await f.Post(ProxyFixture.AcmeKey, "/v1/chat/completions", Chat("stories260K:secret")); // globex's
        var (s3, _) = await f.Post(ProxyFixture.GlobexKey, "/v1/chat/completions", Chat("stories260K:secret"));
        var (s4, b4) = await f.Post(ProxyFixture.AcmeKey, "/v1/chat/completions", Chat("stories260K:../globex/secret"));
        Assert.Equal((404, 404, 200, 404), (s1, s2, s3, s4));
        IsError(b1, "adapter_not_found");
        IsError(b2, "adapter_not_found");
        Assert.Equal(b1.GetProperty("error").GetProperty("message").GetString()!.Replace("nope", "X"), b2.GetProperty("error").GetProperty("message").GetString()!.Replace("secret", "X"));
        IsError(b4, "adapter_not_found");
    }

    [Fact]
    public async Task Bad_bodies_are_400_and_oversize_bodies_413()
    {
        var (s1, t1) = await f.PostRaw(ProxyFixture.AcmeKey, "/v1/chat/completions", "{\"model\": \"stories260K:story\", ");
        Assert.Equal(400, s1);
        IsError(JsonDocument.Parse(t1).RootElement, "invalid_json");
        var (s2, b2) = await f.Post(ProxyFixture.AcmeKey, "/v1/chat/completions", new { model = "stories260K:story", messages = new[] { new { role = "system", content = "x" } } });
        Assert.Equal(400, s2);
        IsError(b2, "nothing_to_encode");
        var (s3, b3) = await f.Post(ProxyFixture.AcmeKey, "/v1/chat/completions", Chat("stories260K:story", ""));
        Assert.Equal(400, s3);
        IsError(b3, "nothing_to_encode");
        var (s4, b4) = await f.Post(ProxyFixture.AcmeKey, "/v1/completions", new { model = "stories260K:story", prompt = new[] { 1, 2, 3 } });
        Assert.Equal(400, s4);
        var (s5, t5) = await f.PostRaw(ProxyFixture.AcmeKey, "/v1/chat/completions", JsonSerializer.Serialize(Chat("stories260K:story", new string('a', 100_000))));
        Assert.Equal(413, s5);
        IsError(JsonDocument.Parse(t5).RootElement, "body_too_large");
    }

    [Fact]
    public async Task An_adapter_for_another_hidden_size_is_422()
    {
        var (status, body) = await f.Post(ProxyFixture.AcmeKey, "/v1/chat/completions", Chat("stories260K:narrow"));
        Assert.Equal(422, status);
        IsError(body, "adapter_incompatible");
    }

    [Fact]
    public async Task An_unreachable_backend_is_502_and_a_silent_one_504()
    {
        var (s1, b1) = await f.Post(ProxyFixture.AcmeKey, "/dead/v1/chat/completions", Chat("stories260K:story"));
        Assert.Equal(502, s1);
        IsError(b1, "backend_unavailable");
        f.CaptureDelayMs = 5000; // the cluster's activity timeout is 2 s
        try
        {
            var (s2, b2) = await f.Post(ProxyFixture.AcmeKey, "/capture/v1/chat/completions", Chat("stories260K:story"));
            Assert.Equal(504, s2);
            IsError(b2, "backend_timeout");
        }
        finally { f.CaptureDelayMs = 0; }
    }

    [Fact]
    public async Task Health_and_readiness()
    {
        using var c = f.Client(null);
        Assert.Equal(200, (int)(await c.GetAsync("/healthz")).StatusCode);
        using var ready = await c.GetAsync("/readyz");
        string body = await ready.Content.ReadAsStringAsync();
        // The "dead" test cluster is unreachable, so the proxy is honestly not ready; the rest are up.
        Assert.Equal(503, (int)ready.StatusCode);
        using var doc = JsonDocument.Parse(body);
        Assert.True(doc.RootElement.GetProperty("encoders").GetBoolean());
        Assert.True(doc.RootElement.GetProperty("backends").GetProperty("chat:d1").GetBoolean());
        Assert.False(doc.RootElement.GetProperty("backends").GetProperty("dead:d1").GetBoolean());
    }
}
