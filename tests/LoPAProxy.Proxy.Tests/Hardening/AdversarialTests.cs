using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Proxy.Tests.Store;

namespace LoPAProxy.Proxy.Tests.Hardening;

/// <summary>
/// The standing adversarial suite: hostile request bodies and names, the cross-tenant matrix on every endpoint, and
/// over a thousand mutated adapter uploads. The rule throughout: a typed OpenAI error or a success — never a 500,
/// never an empty body — and the proxy keeps serving.
/// </summary>
public class AdversarialTests(HardeningFixture f) : IClassFixture<HardeningFixture>
{
    private static readonly int[] Typed = { 200, 400, 404, 405, 413, 415, 422 };

    public static TheoryData<string, string> HostileBodies()
    {
        string deep = new string('[', 5000) + new string(']', 5000);
        const string chat = "/v1/chat/completions", completions = "/v1/completions";
        var data = new TheoryData<string, string>
        {
            { chat, "{" }, { chat, "[]" }, { chat, "null" }, { chat, "\"text\"" }, { chat, deep },
            { chat, """{"model":5,"messages":[{"role":"user","content":"x"}]}""" },
            { chat, """{"model":"stories260K:story","messages":"x"}""" },
            { chat, """{"model":"stories260K:story","messages":[5]}""" },
            { chat, """{"model":"stories260K:story","messages":[{"role":5,"content":"x"}]}""" },
            { chat, """{"model":"stories260K:story","messages":[{"role":"user","content":{"a":1}}]}""" },
            { chat, """{"model":"stories260K:story","messages":[{"role":"user","content":[{"type":5}]}]}""" },
            { chat, """{"model":"stories260K:story","messages":[{"role":"user","content":[{"type":"text","text":5}]}]}""" },
            { chat, """{"model":"stories260K:story","messages":[{"role":"user","content":"\ud800 lone"}]}""" },
            { chat, "{\"model\":\"stories260K:story\",\"messages\":[{\"role\":\"user\",\"content\":\"nul \\u0000 char\"}]}" },
            { chat, """{"model":"stories260K:story","messages":[{"role":"user","content":"<prompt_embeds>"}],"max_tokens":"x"}""" },
            { chat, """{"model":"stories260K:story","messages":[{"role":"user","content":"x"}],"max_tokens":1e30}""" },
            { chat, """{"model":"stories260K:story","messages":[{"role":"user","content":"x"}],"stream":"yes"}""" },
            { chat, """{"model":"stories260K:../globex/secret","messages":[{"role":"user","content":"x"}]}""" },
            { chat, """{"model":"stories260K:..","messages":[{"role":"user","content":"x"}]}""" },
            { chat, """{"model":"stories260K:story@","messages":[{"role":"user","content":"x"}]}""" },
            { chat, """{"model":"stories260K:story@../../x","messages":[{"role":"user","content":"x"}]}""" },
            { chat, """{"model":"stories260K:%2e%2e","messages":[{"role":"user","content":"x"}]}""" },
            { chat, "{\"model\":\"stories260K:" + new string('a',
                10_000) + "\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}" },
            { completions, """{"model":"stories260K:story","prompt":{}}""" },
            { completions, """{"model":"stories260K:story","prompt":[[]]}""" },
            { completions, """{"model":"stories260K:story","prompt":[["a"]]}""" },
            { completions, """{"model":"stories260K:story","prompt":[1.5]}""" },
            { completions, """{"model":"stories260K:story","prompt":[-1]}""" },
            { completions, """{"model":"stories260K:story","prompt":[[1,2],"a"]}""" },
            { completions, """{"model":"stories260K:story","prompt":""}""" },
            { completions, """{"model":"stories260K:story","prompt":"x","prompt_embeds":"AAAA"}""" },
            { completions, """{"model":"stories260K","prompt":[2147483648]}""" },
            { completions, """{"model":"stories260K:story","prompt":"x","max_tokens":-5}""" },
        };
        return data;
    }

    [Theory]
    [MemberData(nameof(HostileBodies))]
    public async Task Hostile_bodies_get_typed_errors_and_the_proxy_keeps_serving(string path, string body)
    {
        var (status, text) = await f.PostAsync(HardeningFixture.AcmeKey, path, body);
        Assert.True(Typed.Contains(status), $"{status}: {text}");
        if (status >= 400)
        {
            JsonElement error = JsonDocument.Parse(text).RootElement.GetProperty("error");
            Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        }
        var (ok, okText) = await f.PostAsync(HardeningFixture.AcmeKey, "/v1/chat/completions",
            HardeningFixture.Chat("stories260K:story"));
        Assert.True(ok == 200, okText);
    }

    [Fact]
    public async Task Invalid_utf8_and_wrong_content_types_are_typed_errors()
    {
        using HttpClient c = f.Client(HardeningFixture.AcmeKey);
        byte[] bytes = Encoding.UTF8.GetBytes("""{"model":"stories260K:story","messages":[{"role":"user","content":"AB"}]}""");
        bytes[^6] = 0xFF; // "A" becomes an invalid UTF-8 byte
        var invalid = new ByteArrayContent(bytes);
        invalid.Headers.TryAddWithoutValidation("Content-Type", "application/json");
        using HttpResponseMessage r1 = await c.PostAsync("/v1/chat/completions", invalid);
        Assert.Equal(400, (int)r1.StatusCode);
        using HttpResponseMessage r2 = await c.PostAsync("/v1/chat/completions", new StringContent("model=x",
            Encoding.UTF8, "text/plain"));
        Assert.True(Typed.Contains((int)r2.StatusCode) && (int)r2.StatusCode >= 400, $"{(int)r2.StatusCode}");
        HardeningFixture.IsError(await r2.Content.ReadAsStringAsync(), "invalid_json");
    }

    [Fact]
    public async Task No_endpoint_lets_one_tenant_see_or_touch_anothers_adapters()
    {
        var settings = new Dictionary<string, string?>
        {
            ["LoPA:Store:Kind"] = "sqlite", ["LoPA:Store:Path"] = Path.Combine(TempDir.Create(), "lopa.db"),
        };
        await using StoreRig stack = await StoreRig.StartAsync(settings);
        string acme = await stack.NewTenantAsync("acme"), globex = await stack.NewTenantAsync("globex");
        using HttpClient a = stack.Client(acme), g = stack.Client(globex);
        Assert.Equal(201, (int)(await a.PostAsync("/v1/adapters", StoreRig.Upload("private", "1",
            StoreRig.Adapter(1)))).StatusCode);
        string missing = await ErrorMessageAsync(g, HttpMethod.Get, "/v1/adapters/nothing-here", null);

        var attempts = new (HttpMethod Method, string Path, HttpContent? Body, Action<HttpRequestMessage>? Tweak)[]
        {
            (HttpMethod.Get, "/v1/adapters/private", null, null),
            (HttpMethod.Get, "/v1/adapters/private@1", null, null),
            (HttpMethod.Delete, "/v1/adapters/private@1", null, null),
            (HttpMethod.Delete, "/v1/adapters/private", null, null),
            (HttpMethod.Post, "/v1/adapters/private/activate", JsonContent.Create(new { version = "1" }), null),
            (HttpMethod.Post, "/v1/chat/completions", JsonContent.Create(HardeningFixture.Chat("stories260K:private")),
                null),
            (HttpMethod.Post, "/v1/chat/completions",
                JsonContent.Create(HardeningFixture.Chat("stories260K:private@1")), null),
            (HttpMethod.Post, "/v1/chat/completions", JsonContent.Create(HardeningFixture.Chat("stories260K")),
                r => r.Headers.Add("X-LoPA-Adapter", "private")),
        };
        foreach (var (method, path, body, tweak) in attempts)
        {
            var request = new HttpRequestMessage(method, path) { Content = body };
            tweak?.Invoke(request);
            using HttpResponseMessage r = await g.SendAsync(request);
            string text = await r.Content.ReadAsStringAsync();
            Assert.True((int)r.StatusCode == 404, $"{method} {path}: {(int)r.StatusCode} {text}");
            string message = JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("message").GetString()!;
            Assert.Equal(Shape(missing), Shape(message)); // indistinguishable from a name nobody has
        }
        // Admin endpoints are not for tenant keys; globex's own list is empty; acme's adapter is untouched.
        foreach (string path in new[] { "/admin/tenants", "/admin/tenants/acme/keys" })
            Assert.Equal(401, (int)(await g.GetAsync(path)).StatusCode);
        Assert.Equal(401, (int)(await g.PostAsync("/admin/tenants/acme/disable", null)).StatusCode);
        Assert.Equal(0,
            JsonDocument.Parse(await g.GetStringAsync("/v1/adapters")).RootElement.GetProperty("data").GetArrayLength());
        JsonElement mine = JsonDocument.Parse(await a.GetStringAsync("/v1/adapters/private")).RootElement.GetProperty("adapter");
        Assert.True(mine.GetProperty("active").GetBoolean());
        // The same name in globex's own namespace is globex's, and does not disturb acme's.
        Assert.Equal(201, (int)(await g.PostAsync("/v1/adapters", StoreRig.Upload("private", "1",
            StoreRig.Adapter(2)))).StatusCode);
        Assert.Equal(mine.GetProperty("sha256").GetString(),
            JsonDocument.Parse(await a.GetStringAsync("/v1/adapters/private")).RootElement.GetProperty("adapter").GetProperty("sha256").GetString());
    }

    private static async Task<string> ErrorMessageAsync(HttpClient c, HttpMethod method, string path, HttpContent? body)
    {
        using HttpResponseMessage r = await c.SendAsync(new HttpRequestMessage(method, path) { Content = body });
        return JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("message").GetString()!;
    }

    /// <summary>A message with the adapter reference blanked, to compare wording.</summary>
    private static string Shape(string message) => System.Text.RegularExpressions.Regex.Replace(message, "`[^`]*`",
        "`X`");

    [Fact]
    public async Task A_thousand_mutated_uploads_are_stored_whole_or_refused_with_a_typed_error()
    {
        var settings = new Dictionary<string, string?>
        {
            ["LoPA:Store:Kind"] = "sqlite", ["LoPA:Store:Path"] = Path.Combine(TempDir.Create(), "lopa.db"),
            ["LoPA:Quotas:MaxAdaptersPerTenant"] = "5000", ["LoPA:Quotas:MaxUploadBytes"] = "1000000",
        };
        await using StoreRig stack = await StoreRig.StartAsync(settings);
        string key = await stack.NewTenantAsync("acme");
        LopaAdapter seed = StoreRig.Adapter(9);
        byte[] single = seed.ToSingleFile();
        string config = seed.Config.ToJson();
        var rng = new Random(20261202);
        int accepted = 0;
        var statuses = new Dictionary<int, int>();
        using HttpClient c = stack.Client(key);
        const int Mutants = 1200;
        for (int batch = 0; batch < Mutants; batch += 8)
        {
            var sends = Enumerable.Range(batch, 8).Select(i =>
            {
                HttpContent form = (i % 6) switch
                {
                    2 => TwoFileForm(i, Mutate(Encoding.UTF8.GetBytes(config), rng), single),
                    5 => TwoFileForm(i, Encoding.UTF8.GetBytes(StrictJsonTests.DuplicateFirstKey(
                        config, out _)), single), // a duplicated key: 400, never a 500
                    4 => SingleFileForm(i, StrictJsonTests.SingleFileWithDuplicateConfigKey(seed, out _)),
                    _ => SingleFileForm(i, Mutate(single, rng)),
                };
                return SendAsync(c, form);
            }).ToArray();
            foreach (var (status, text) in await Task.WhenAll(sends))
            {
                statuses[status] = statuses.GetValueOrDefault(status) + 1;
                Assert.True(status is 201 or 400 or 413 or 422, $"{status}: {text}");
                if (status == 201) accepted++;
                else Assert.False(string.IsNullOrEmpty(JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("message").GetString()));
            }
        }
        // What was acknowledged is exactly what is stored, and the proxy still serves.
        int stored = JsonDocument.Parse(await c.GetStringAsync("/v1/adapters")).RootElement.GetProperty("data").GetArrayLength();
        Assert.Equal(accepted, stored);
        Assert.True(statuses.GetValueOrDefault(400) > Mutants / 4, string.Join(", ", statuses.Select(s =>
            $"{s.Key}: {s.Value}")));
        using HttpResponseMessage ok = await c.PostAsJsonAsync("/v1/chat/completions",
            HardeningFixture.Chat("stories260K"));
        Assert.Equal(200, (int)ok.StatusCode);
    }

    /// <summary>One of: flip bytes (often in the header), truncate, append junk, or rewrite the header
    /// length.</summary>
    private static byte[] Mutate(byte[] original, Random rng)
    {
        byte[] bytes = (byte[])original.Clone();
        int headerEnd = Math.Min(bytes.Length, 8 + (int)Math.Min(BitConverter.ToUInt64(original, 0),
            (ulong)bytes.Length));
        switch (rng.Next(5))
        {
            case 0:
                for (int k = rng.Next(1, 4); k > 0; k--) bytes[rng.Next(Math.Max(1, headerEnd))] = (byte)rng.Next(256);
                return bytes;
            case 1:
                bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8));
                return bytes;
            case 2:
                return bytes[..rng.Next(bytes.Length)];
            case 3:
                return bytes.Concat(Enumerable.Range(0, rng.Next(1, 64)).Select(_ => (byte)rng.Next(256))).ToArray();
            default:
                BitConverter.GetBytes((ulong)rng.NextInt64(0, long.MaxValue) >> rng.Next(64)).CopyTo(bytes, 0);
                return bytes;
        }
    }

    private static HttpContent SingleFileForm(int i, byte[] file) => new MultipartFormDataContent
    {
        { new StringContent("m" + i), "name" }, { new StringContent("1"), "version" },
        { new ByteArrayContent(file), "file", "adapter.safetensors" },
    };

    private static HttpContent TwoFileForm(int i, byte[] config, byte[] weights) => new MultipartFormDataContent
    {
        { new StringContent("m" + i), "name" }, { new StringContent("1"), "version" },
        { new ByteArrayContent(config), "config", LopaAdapter.ConfigFile },
        { new ByteArrayContent(weights), "weights", LopaAdapter.WeightsFile },
    };

    private static async Task<(int Status, string Text)> SendAsync(HttpClient c, HttpContent form)
    {
        using HttpResponseMessage r = await c.PostAsync("/v1/adapters", form);
        return ((int)r.StatusCode, await r.Content.ReadAsStringAsync());
    }
}
