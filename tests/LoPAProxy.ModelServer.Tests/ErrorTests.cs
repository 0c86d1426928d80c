using System.Text.Json;
using LoPAProxy.Engine.Formats.Torch;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.ModelServer.Tests;

/// <summary>Every bad request gets a 4xx OpenAI error naming the problem, and the server keeps serving.</summary>
public class ErrorTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static string Embeds(float[] values, params int[] shape) => Convert.ToBase64String(TorchFile.SaveTensor(Tensor.FromArray(values, shape)));

    private async Task Expect(int status, string code, string? param, Func<Task<(int, JsonElement)>> call)
    {
        var (s, body) = await call();
        Assert.True(status == s, $"expected {status}, got {s}: {body}");
        JsonElement error = body.GetProperty("error");
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.Equal(code, error.GetProperty("code").GetString());
        if (param != null) Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.True(error.TryGetProperty("type", out _));
        // ...and the server is still fine.
        var (ok, _) = await server.PostAsync("/v1/completions", new { prompt = "Hi", max_tokens = 1 });
        Assert.Equal(200, ok);
    }

    /// <summary>#25 item 3: a feature this server does not implement is refused naming it, never ignored.</summary>
    [Theory]
    [InlineData("/v1/chat/completions", "tools", """[{"type":"function","function":{"name":"f"}}]""")]
    [InlineData("/v1/chat/completions", "tool_choice", "\"auto\"")]
    [InlineData("/v1/chat/completions", "response_format", """{"type":"xml"}""")]
    [InlineData("/v1/completions", "response_format",
        """{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"string","pattern":"a"}}}""")]
    [InlineData("/v1/chat/completions", "presence_penalty", "0.5")]
    [InlineData("/v1/completions", "frequency_penalty", "1")]
    [InlineData("/v1/chat/completions", "modalities", """["text","audio"]""")]
    [InlineData("/v1/chat/completions", "reasoning_effort", "\"low\"")]
    [InlineData("/v1/chat/completions", "store", "true")]
    [InlineData("/v1/completions", "suffix", "\" the end\"")]
    public async Task Features_this_server_does_not_implement_are_refused_by_name(string path, string field,
        string value)
    {
        string input = path.Contains("chat") ? "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]"
            : "\"prompt\":\"Hi\"";
        string body = $"{{{input},\"max_tokens\":1,\"{field}\":{value}}}";
        await Expect(400, "unsupported_parameter", field, () => server.PostRawAsync(path, body));
    }

    [Theory]
    [InlineData("""{"x":1}""")]
    [InlineData("""{"-1":1}""")]
    [InlineData("""{"512":1}""")]
    [InlineData("""{"42":100.5}""")]
    [InlineData("""{"42":"1"}""")]
    [InlineData("[42]")]
    public async Task A_logit_bias_outside_the_vocabulary_or_the_range_is_refused(string value)
    {
        string body = $"{{\"prompt\":\"Hi\",\"max_tokens\":1,\"logit_bias\":{value}}}";
        await Expect(400, "invalid_request", "logit_bias", () => server.PostRawAsync("/v1/completions", body));
    }

    [Fact]
    public async Task Feature_fields_that_ask_for_nothing_are_accepted()
    {
        var (status, body) = await server.PostRawAsync("/v1/chat/completions", """
            {"messages":[{"role":"user","content":"Hi"}],"max_tokens":1,"tools":[],"tool_choice":"none",
             "response_format":{"type":"text"},"logit_bias":{},"logprobs":false,"presence_penalty":0,
             "frequency_penalty":0,"modalities":["text"],"store":false}
            """);
        Assert.True(status == 200, body.ToString());
    }

    [Fact]
    public async Task Malformed_json_and_wrong_types()
    {
        await Expect(400, "invalid_json", null, () => server.PostRawAsync("/v1/completions", "{\"prompt\": \"a\""));
        await Expect(400, "invalid_json", null, () => server.PostRawAsync("/v1/completions", "[1,2]"));
        await Expect(400, "invalid_request", "max_tokens", () => server.PostAsync("/v1/completions", new { prompt = "a", max_tokens = "ten" }));
        await Expect(400, "invalid_request", "temperature", () => server.PostAsync("/v1/completions", new { prompt = "a", temperature = 5 }));
        await Expect(400, "invalid_request", "prompt", () => server.PostAsync("/v1/completions", new { prompt = 12 }));
        await Expect(400, "invalid_request", "stream", () => server.PostAsync("/v1/completions", new { prompt = "a", stream = "yes" }));
        await Expect(400, "invalid_request", "n", () => server.PostAsync("/v1/completions", new { prompt = "a", n = 0 }));
        await Expect(400, "invalid_request", "messages[0].role", () => server.PostAsync("/v1/chat/completions", new { messages = new[] { new { role = "robot", content = "x" } } }));
        var image = new { messages = new[] { new { role = "user", content = new[] { new { type = "image_url" } } } } };
        await Expect(400, "unsupported_parameter", "messages[0].content[0]",
            () => server.PostAsync("/v1/chat/completions", image));
    }

    [Fact]
    public async Task Empty_prompts_and_max_tokens_out_of_range()
    {
        await Expect(400, "empty_prompt", "prompt", () => server.PostAsync("/v1/completions", new { prompt = "" }));
        await Expect(400, "empty_prompt", "prompt", () => server.PostAsync("/v1/completions", new { prompt = Array.Empty<string>() }));
        await Expect(400, "missing_prompt", "prompt", () => server.PostAsync("/v1/completions", new { max_tokens = 3 }));
        await Expect(400, "missing_messages", "messages", () => server.PostAsync("/v1/chat/completions", new { messages = Array.Empty<object>() }));
        await Expect(400, "invalid_request", "max_tokens", () => server.PostAsync("/v1/completions", new { prompt = "a", max_tokens = 0 }));
        await Expect(400, "invalid_request", "max_tokens", () => server.PostAsync("/v1/completions", new { prompt = "a", max_tokens = 100000 }));
        await Expect(400, "context_length_exceeded", "max_tokens", () => server.PostAsync("/v1/completions", new { prompt = "a", max_tokens = 600 }));
        await Expect(400, "invalid_token_id", "prompt", () => server.PostAsync("/v1/completions", new { prompt = new[] { 1, 9999 } }));
    }

    [Fact]
    public async Task Bad_prompt_embeds()
    {
        string good = ServerFixture.EmbedsBase64([1, 300]);
        await Expect(400, "invalid_base64", "prompt_embeds", () => server.PostAsync("/v1/completions", new { prompt_embeds = "not base64!!" }));
        await Expect(400, "invalid_base64", "prompt_embeds", () => server.PostAsync("/v1/completions", new { prompt_embeds = good[..40] + "\n" + good[40..] }));
        await Expect(400, "invalid_base64", "prompt_embeds", () => server.PostAsync("/v1/completions", new { prompt_embeds = good.Replace('+', '-').Replace('/', '_') + (good.Contains('+') || good.Contains('/') ? "" : "-___") }));
        await Expect(400, "invalid_prompt_embeds", "prompt_embeds", () => server.PostAsync("/v1/completions", new { prompt_embeds = Convert.ToBase64String(new byte[100]) }));
        await Expect(400, "hidden_size_mismatch", "prompt_embeds", () => server.PostAsync("/v1/completions", new { prompt_embeds = Embeds(new float[3 * 32], 3, 32) }));
        await Expect(400, "invalid_prompt_embeds", "prompt_embeds", () => server.PostAsync("/v1/completions", new { prompt_embeds = Embeds(new float[2 * 3 * 64], 2, 3, 64) }));
        await Expect(400, "invalid_prompt_embeds", "prompt_embeds", () => server.PostAsync("/v1/completions", new { prompt_embeds = Embeds(new float[64], 64) }));
        float[] nan = new float[2 * 64]; nan[70] = float.NaN;
        await Expect(400, "non_finite_prompt_embeds", "prompt_embeds", () => server.PostAsync("/v1/completions", new { prompt_embeds = Embeds(nan, 2, 64) }));
        float[] inf = new float[2 * 64]; inf[3] = float.PositiveInfinity;
        await Expect(400, "non_finite_prompt_embeds", "prompt_embeds[1]", () => server.PostAsync("/v1/completions", new { prompt_embeds = new[] { good, Embeds(inf, 2, 64) } }));
        await Expect(400, "context_length_exceeded", "prompt", () => server.PostAsync("/v1/completions", new { prompt_embeds = Embeds(new float[513 * 64], 513, 64) }));
        await Expect(400, "unsupported_parameter", "echo", () => server.PostAsync("/v1/completions",
            new { prompt_embeds = good, echo = true }));
        await Expect(400, "unsupported_parameter", "prompt_logprobs", () => server.PostAsync("/v1/completions",
            new { prompt_embeds = good, prompt_logprobs = 1 }));
        string stateDict = PyTorch.Run("""
            import io, base64, torch
            buf = io.BytesIO(); torch.save({'prompt_embeddings': torch.zeros(2, 64)}, buf)
            print(base64.b64encode(buf.getvalue()).decode())
            """).Trim();
        await Expect(400, "invalid_prompt_embeds", "prompt_embeds", () => server.PostAsync("/v1/completions", new { prompt_embeds = stateDict }));
        string ints = PyTorch.Run("""
            import io, base64, torch
            buf = io.BytesIO(); torch.save(torch.zeros(2, 64, dtype=torch.int64), buf)
            print(base64.b64encode(buf.getvalue()).decode())
            """).Trim();
        await Expect(400, "invalid_prompt_embeds", "prompt_embeds", () => server.PostAsync("/v1/completions", new { prompt_embeds = ints }));
        await Expect(400, "non_finite_prompt_embeds", "messages[0].content[0]", () => server.PostAsync("/v1/chat/completions",
            new { messages = new[] { new { role = "user", content = new[] { new { type = "prompt_embeds", data = Embeds(nan, 2, 64) } } } } }));
    }

    [Fact]
    public async Task Unknown_model_and_route_are_404()
    {
        await Expect(404, "model_not_found", "model", () => server.PostAsync("/v1/completions", new { model = "gpt-5", prompt = "a" }));
        await Expect(404, "route_not_found", null, () => server.PostAsync("/v1/embeddings", new { input = "a" }));
    }
}
