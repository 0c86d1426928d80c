using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Proxy.Tests.Limits;
using LoPAProxy.Proxy.Tests.Store;

namespace LoPAProxy.Proxy.Tests.Hardening;

/// <summary>
/// #22 items 5 and 7: every JSON the proxy and the model server parse refuses duplicate keys with a typed 400 naming
/// the key (an adapter config with one was a 500 ArgumentException), and both servers share one nesting bound.
/// </summary>
public class StrictJsonTests
{
    /// <summary>The JSON object text with its first property written twice (the second with another value).</summary>
    public static string DuplicateFirstKey(string json, out string key)
    {
        JsonObject o = JsonNode.Parse(json)!.AsObject();
        key = o.First().Key;
        string inner = o.ToJsonString();
        return "{" + JsonSerializer.Serialize(key) + ":" + o[key]!.ToJsonString() + "," + inner[1..];
    }

    /// <summary>A single-file adapter whose __metadata__ config carries a duplicated key.</summary>
    public static byte[] SingleFileWithDuplicateConfigKey(LopaAdapter adapter, out string key)
    {
        byte[] file = adapter.ToSingleFile();
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        JsonObject header = JsonNode.Parse(file.AsSpan(8, n))!.AsObject();
        JsonObject metadata = header["__metadata__"]!.AsObject();
        metadata["adapter_config"] = DuplicateFirstKey(metadata["adapter_config"]!.GetValue<string>(), out key);
        byte[] newHeader = Encoding.UTF8.GetBytes(header.ToJsonString());
        var result = new byte[8 + newHeader.Length + file.Length - 8 - n];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)newHeader.Length);
        newHeader.CopyTo(result, 8);
        file.AsSpan(8 + n).CopyTo(result.AsSpan(8 + newHeader.Length));
        return result;
    }

    private static async Task<(int Status, string Message)> SendAsync(HttpClient c, HttpMethod method, string path,
        HttpContent content)
    {
        using HttpResponseMessage r = await c.SendAsync(new HttpRequestMessage(method, path) { Content = content });
        string text = await r.Content.ReadAsStringAsync();
        string message = text.StartsWith('{') && JsonDocument.Parse(text).RootElement.TryGetProperty("error",
            out JsonElement e) ? e.GetProperty("message").GetString()! : text;
        return ((int)r.StatusCode, message);
    }

    private static StringContent Json(string text) => new(text, Encoding.UTF8, "application/json");

    [Fact]
    public async Task A_duplicate_key_anywhere_is_a_400_that_names_it_and_nothing_is_stored()
    {
        await using StoreRig stack = await StoreRig.StartAsync(RateLimitHttpTests.Sqlite());
        string key = await stack.NewTenantAsync("acme");
        using HttpClient c = stack.Client(key), admin = stack.Client(StoreRig.AdminKey);
        LopaAdapter adapter = StoreRig.Adapter(3);

        string config = DuplicateFirstKey(adapter.Config.ToJson(), out string configKey);
        var twoFiles = new MultipartFormDataContent
        {
            { new StringContent("dup"), "name" }, { new StringContent("1"), "version" },
            { new ByteArrayContent(Encoding.UTF8.GetBytes(config)), "config", LopaAdapter.ConfigFile },
            { new ByteArrayContent(adapter.ToSingleFile()), "weights", LopaAdapter.WeightsFile },
        };
        var (s1, m1) = await SendAsync(c, HttpMethod.Post, "/v1/adapters", twoFiles);
        Assert.True(s1 == 400 && m1.Contains(configKey, StringComparison.Ordinal), $"{s1}: {m1}");

        byte[] single = SingleFileWithDuplicateConfigKey(adapter, out string metadataKey);
        var oneFile = new MultipartFormDataContent
        {
            { new StringContent("dup"), "name" }, { new StringContent("2"), "version" },
            { new ByteArrayContent(single), "file", "adapter.safetensors" },
        };
        var (s2, m2) = await SendAsync(c, HttpMethod.Post, "/v1/adapters", oneFile);
        Assert.True(s2 == 400 && m2.Contains(metadataKey, StringComparison.Ordinal), $"{s2}: {m2}");
        Assert.Equal(0, JsonDocument.Parse(await c.GetStringAsync("/v1/adapters")).RootElement.GetProperty("data")
            .GetArrayLength());

        const string Chat = """{"model":"stories260K","model":"x","messages":[{"role":"user","content":"hi"}]}""";
        var (s3, m3) = await SendAsync(c, HttpMethod.Post, "/v1/chat/completions", Json(Chat));
        Assert.True(s3 == 400 && m3.Contains("'model'", StringComparison.Ordinal), $"{s3}: {m3}");
        var (s4, m4) = await SendAsync(admin, HttpMethod.Put, "/admin/tenants/acme/limits",
            Json("""{"requests_per_minute":5,"requests_per_minute":0}"""));
        Assert.True(s4 == 400 && m4.Contains("requests_per_minute", StringComparison.Ordinal), $"{s4}: {m4}");

        // The reference model server, called directly, says the same.
        using var server = new HttpClient { BaseAddress = new Uri(stack.Reference.Urls.First()) };
        var (s5, m5) = await SendAsync(server, HttpMethod.Post, "/v1/completions",
            Json("""{"prompt":"Once","max_tokens":2,"max_tokens":3}"""));
        Assert.True(s5 == 400 && m5.Contains("max_tokens", StringComparison.Ordinal), $"{s5}: {m5}");
    }

    private static string Nested(int depth) =>
        """{"model":"stories260K","max_tokens":2,"messages":[{"role":"user","content":"hi"}],"user_data":"""
        + new string('[', depth - 1) + new string(']', depth - 1) + "}";

    [Fact]
    public async Task The_proxy_and_the_model_server_share_one_nesting_bound()
    {
        await using StoreRig stack = await StoreRig.StartAsync(RateLimitHttpTests.Sqlite());
        string key = await stack.NewTenantAsync("acme");
        using HttpClient c = stack.Client(key);
        // 48 deep: within the bound — the proxy forwards it and the model server takes it (it refused past 32).
        var (ok, okMessage) = await SendAsync(c, HttpMethod.Post, "/v1/chat/completions", Json(Nested(48)));
        Assert.True(ok == 200, okMessage);
        // Past the bound: the proxy refuses it itself, and so would the model server.
        int over = LoPAProxy.Engine.Formats.StrictJson.MaxRequestDepth + 1;
        var (refused, message) = await SendAsync(c, HttpMethod.Post, "/v1/chat/completions", Json(Nested(over)));
        Assert.True(refused == 400, message);
        using var server = new HttpClient { BaseAddress = new Uri(stack.Reference.Urls.First()) };
        var (direct, _) = await SendAsync(server, HttpMethod.Post, "/v1/chat/completions", Json(Nested(over)));
        Assert.Equal(400, direct);
    }
}
