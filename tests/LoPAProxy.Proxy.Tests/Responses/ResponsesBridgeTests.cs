using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LoPAProxy.Proxy.Tests.Hardening;
using LoPAProxy.Proxy.Tests.Limits;
using LoPAProxy.Proxy.Tests.Store;

namespace LoPAProxy.Proxy.Tests.Responses;

/// <summary>
/// #25 item 1: POST /v1/responses bridged onto the chat backend — the same soft prompt, answer and usage as chat,
/// OpenAI's event sequence when streamed, checked with the official openai client; limits and usage as for chat;
/// a backend failure mid-stream as response.failed; what is not carried is a 400 naming it.
/// </summary>
public class ResponsesBridgeTests(ProxyFixture f) : IClassFixture<ProxyFixture>
{
    [Fact]
    public async Task The_official_client_gets_the_chat_answer_in_the_responses_shape_whole_and_streamed()
    {
        JsonElement r = await f.RunOpenAiScriptAsync("openai-responses.mjs");
        JsonElement chat = r.GetProperty("chat"), created = r.GetProperty("created");
        string text = chat.GetProperty("text").GetString()!;
        Assert.False(string.IsNullOrEmpty(text));
        // The same soft prompt and the same greedy answer as chat, with chat's usage as input/output tokens.
        Assert.Equal(text, created.GetProperty("text").GetString());
        Assert.Equal("response", created.GetProperty("object").GetString());
        Assert.StartsWith("resp_", created.GetProperty("id").GetString());
        Assert.Equal("stories260K:story", created.GetProperty("model").GetString());
        Assert.Equal("bridge", created.GetProperty("metadata").GetProperty("run").GetString());
        JsonElement chatUsage = chat.GetProperty("usage"), usage = created.GetProperty("usage");
        Assert.Equal(chatUsage.GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("input_tokens").GetInt32());
        Assert.Equal(chatUsage.GetProperty("completion_tokens").GetInt32(),
            usage.GetProperty("output_tokens").GetInt32());
        Assert.Equal(text, r.GetProperty("items").GetString()); // message items say the same as a string input
        JsonElement streamed = r.GetProperty("streamed");
        Assert.Equal(text, streamed.GetProperty("text").GetString());
        Assert.Equal(text, streamed.GetProperty("final").GetString());
        Assert.Contains(streamed.GetProperty("status").GetString(), new[] { "completed", "incomplete" });
        Assert.Equal(usage.GetProperty("output_tokens").GetInt32(),
            streamed.GetProperty("usage").GetProperty("output_tokens").GetInt32());
        string[] types = streamed.GetProperty("types").EnumerateArray().Select(t => t.GetString()!).ToArray();
        Assert.Equal(new[]
        {
            "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
            "response.output_text.delta", "response.output_text.done", "response.content_part.done",
            "response.output_item.done", "response.completed",
        }, types);
        JsonElement refused = r.GetProperty("refused");
        Assert.Equal(400, refused.GetProperty("status").GetInt32());
        Assert.Equal("unsupported_parameter", refused.GetProperty("code").GetString());
        Assert.Equal("previous_response_id", refused.GetProperty("param").GetString());
    }

    [Theory]
    [InlineData("""{"tools":[{"type":"function","name":"f"}]}""", "tools")]
    [InlineData("""{"store":true}""", "store")]
    [InlineData("""{"text":{"format":{"type":"xml"}}}""", "text.format")]
    [InlineData("""{"reasoning":{"effort":"low"}}""", "reasoning")]
    [InlineData("""{"input":[{"type":"function_call_output","call_id":"c","output":"x"}]}""", "input")]
    public async Task What_the_bridge_does_not_carry_is_a_400_naming_it(string extra, string field)
    {
        var body = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(extra)!;
        var request = new Dictionary<string, object> { ["model"] = "stories260K:story", ["input"] = "Tom had a kite" };
        foreach (var (key, value) in body) request[key] = value;
        var (status, text) = await PostAsync(ProxyFixture.AcmeKey, "/v1/responses", JsonSerializer.Serialize(request));
        Assert.Equal(400, status);
        JsonElement error = HardeningFixture.IsError(text, "unsupported_parameter");
        Assert.Equal(field, error.GetProperty("param").GetString());
    }

    private async Task<(int Status, string Text)> PostAsync(string key, string path, string json)
    {
        using HttpClient c = f.Client(key);
        using HttpResponseMessage r = await c.PostAsync(path, new StringContent(json, Encoding.UTF8,
            "application/json"));
        return ((int)r.StatusCode, await r.Content.ReadAsStringAsync());
    }
}

/// <summary>Limits, usage and failures of bridged requests are chat's.</summary>
public class ResponsesAccountingTests
{
    [Fact]
    public async Task A_bridged_request_is_limited_and_counted_like_chat()
    {
        await using StoreRig stack = await StoreRig.StartAsync(RateLimitHttpTests.Sqlite());
        string key = await stack.NewTenantAsync("acme");
        using HttpClient c = stack.Client(key);
        Assert.Equal(201, (int)(await c.PostAsync("/v1/adapters", StoreRig.Upload("story", "1",
            StoreRig.Adapter(1)))).StatusCode);
        await RateLimitHttpTests.SetLimitsAsync(stack, "acme", new { requests_per_minute = 1 });
        using HttpResponseMessage first = await c.PostAsJsonAsync("/v1/responses",
            new { model = "stories260K:story", input = "Tom had a red kite", max_output_tokens = 5, temperature = 0 });
        string firstText = await first.Content.ReadAsStringAsync();
        Assert.True(first.IsSuccessStatusCode, firstText);
        JsonElement usage = JsonDocument.Parse(firstText).RootElement.GetProperty("usage");
        using HttpResponseMessage second = await c.PostAsJsonAsync("/v1/responses",
            new { model = "stories260K:story", input = "again" });
        Assert.Equal(429, (int)second.StatusCode);
        HardeningFixture.IsError(await second.Content.ReadAsStringAsync(), "rate_limit_exceeded");
        JsonElement totals = JsonDocument.Parse(await c.GetStringAsync("/v1/usage?bucket_width=1h")).RootElement
            .GetProperty("totals").EnumerateArray().Single(t => t.GetProperty("adapter").GetString() == "story");
        Assert.Equal(usage.GetProperty("input_tokens").GetInt64(), totals.GetProperty("prompt_tokens").GetInt64());
        Assert.Equal(usage.GetProperty("output_tokens").GetInt64(), totals.GetProperty("completion_tokens").GetInt64());
        Assert.Equal(4, totals.GetProperty("soft_prompt_rows").GetInt64()); // the adapter's m rows, as for chat
    }
}

/// <summary>A model server that dies mid-stream: the Responses stream ends with response.failed.</summary>
public class ResponsesFailureTests(HardeningFixture f) : IClassFixture<HardeningFixture>
{
    [Fact]
    public async Task A_backend_failure_mid_stream_ends_the_stream_with_response_failed()
    {
        var (status, text) = await f.PostAsync(HardeningFixture.AcmeKey, "/dying/v1/responses",
            new { model = "stories260K:story", input = "Tom had a red kite", stream = true });
        Assert.Equal(200, status);
        string[] types = text.Split('\n').Where(l => l.StartsWith("event: ", StringComparison.Ordinal))
            .Select(l => l[7..]).ToArray();
        Assert.Equal("response.created", types[0]);
        Assert.Contains("response.output_text.delta", types);
        Assert.Equal("response.failed", types[^1]);
        Assert.DoesNotContain("response.completed", types);
    }
}
