using System.Net.Http.Json;
using System.Text.Json;

namespace LoPAProxy.Proxy.Tests.Dialects;

/// <summary>
/// The trtllm dialect against a stand-in for Triton + TensorRT-LLM (<see cref="FakeTritonTrtLlm"/>) that runs
/// stories260K on the table it receives: the same Z gives the same text as the vLLM path.
/// </summary>
public class TensorRtLlmDialectTests(ProxyFixture f) : IClassFixture<ProxyFixture>
{
    private const string Prompt = "Tom had a red kite";
    private static readonly object Request = new
    {
        model = "stories260K:story", prompt = Prompt, max_tokens = 12, temperature = 0,
    };

    private static string Text(JsonElement answer) =>
        answer.GetProperty("choices")[0].GetProperty("text").GetString()!;

    [Fact]
    public async Task The_soft_prompt_travels_as_a_prompt_table_and_the_text_matches_the_vllm_path()
    {
        while (f.TritonBodies.TryDequeue(out _)) { }
        var (status, viaTriton) = await f.Post(ProxyFixture.AcmeKey, "/trtllm/v1/completions", Request);
        Assert.Equal(200, status);
        var (_, viaVllm) = await f.Post(ProxyFixture.AcmeKey, "/v1/completions", Request);
        Assert.Equal(Text(viaVllm), Text(viaTriton));
        Assert.Equal("text_completion", viaTriton.GetProperty("object").GetString());
        Assert.Equal("stories260K:story", viaTriton.GetProperty("model").GetString());
        Assert.Equal("length", viaTriton.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        JsonElement usage = viaTriton.GetProperty("usage");
        Assert.Equal(viaVllm.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(),
            usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(12, usage.GetProperty("completion_tokens").GetInt32());

        Assert.True(f.TritonBodies.TryDequeue(out string? forwarded));
        JsonElement body = JsonDocument.Parse(forwarded!).RootElement;
        int[] ids = ProxyFixture.References.Value.Tokenizer.Encode(Prompt, true, false);
        int[] expectedIds = [512, 513, 514, 515, .. ids];
        Assert.Equal(expectedIds, body.GetProperty("input_ids").EnumerateArray().Select(v => v.GetInt32()));
        Assert.Equal(expectedIds.Length, body.GetProperty("input_lengths").GetInt32());
        Assert.Equal(4, body.GetProperty("prompt_vocab_size").GetInt32());
        Assert.Equal(12, body.GetProperty("request_output_len").GetInt32());
        Assert.Equal(1, body.GetProperty("runtime_top_k").GetInt32());
        Assert.Equal(2, body.GetProperty("end_id").GetInt32());
        float[] table = body.GetProperty("prompt_embedding_table").EnumerateArray()
            .SelectMany(row => row.EnumerateArray().Select(v => v.GetSingle())).ToArray();
        Assert.Equal(f.ExpectedZ("acme", "story", Prompt), table);
        Assert.False(body.TryGetProperty("prompt", out _));
        Assert.False(body.TryGetProperty("model", out _));
    }

    [Fact]
    public async Task A_stream_carries_the_same_text_as_deltas_then_done()
    {
        var (_, whole) = await f.Post(ProxyFixture.AcmeKey, "/trtllm/v1/completions", Request);
        using HttpClient client = f.Client(ProxyFixture.AcmeKey);
        var request = new HttpRequestMessage(HttpMethod.Post, "/trtllm/v1/completions")
        {
            Content = JsonContent.Create(new
            {
                model = "stories260K:story", prompt = Prompt, max_tokens = 12, temperature = 0, stream = true,
                stream_options = new { include_usage = true },
            }),
        };
        using HttpResponseMessage response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(200, (int)response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var events = new List<string>();
        while (await reader.ReadLineAsync() is { } line)
            if (line.StartsWith("data: ", StringComparison.Ordinal)) events.Add(line[6..]);
        Assert.Equal("[DONE]", events[^1]);
        JsonElement usage = JsonDocument.Parse(events[^2]).RootElement.GetProperty("usage");
        Assert.Equal(12, usage.GetProperty("completion_tokens").GetInt32());
        List<JsonElement> chunks = events.Take(events.Count - 2)
            .Select(e => JsonDocument.Parse(e).RootElement.GetProperty("choices")[0]).ToList();
        Assert.True(chunks.Count > 3, $"{chunks.Count} chunks");
        Assert.Equal(Text(whole), string.Concat(chunks.Select(c => c.GetProperty("text").GetString())));
        Assert.Equal("length", chunks[^1].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task An_fp16_engine_gets_its_table_in_fp16()
    {
        while (f.TritonBodies.TryDequeue(out _)) { }
        var (status, answer) = await f.Post(ProxyFixture.AcmeKey, "/trtllm16/v1/completions", new
        {
            model = "stories260K-fp16:story", prompt = Prompt, max_tokens = 6, temperature = 0,
        });
        Assert.True(status == 200, answer.ToString());
        Assert.True(f.TritonBodies.TryDequeue(out string? forwarded));
        float[] table = JsonDocument.Parse(forwarded!).RootElement.GetProperty("prompt_embedding_table")
            .EnumerateArray().SelectMany(row => row.EnumerateArray().Select(v => v.GetSingle())).ToArray();
        float[] expected = f.ExpectedZ("acme", "story", Prompt).Select(v => (float)(Half)v).ToArray();
        Assert.Equal(expected, table);
    }

    [Theory]
    [InlineData("stop", "\"stop\": [\"\\n\"]")]
    [InlineData("logprobs", "\"logprobs\": 2")]
    [InlineData("n", "\"n\": 2")]
    [InlineData("prompt", "\"prompt\": [\"a\", \"b\"]")]
    public async Task What_the_dialect_cannot_carry_is_refused_by_name(string field, string json)
    {
        string body = "{\"model\": \"stories260K:story\", \"max_tokens\": 4, "
            + (field == "prompt" ? json : "\"prompt\": \"Tom\", " + json) + "}";
        var (status, text) = await f.PostRaw(ProxyFixture.AcmeKey, "/trtllm/v1/completions", body);
        Assert.Equal(400, status);
        JsonElement error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Equal(field, error.GetProperty("param").GetString());
        Assert.Equal("unsupported_parameter", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Chat_with_an_adapter_on_a_trtllm_route_is_422()
    {
        var (status, body) = await f.Post(ProxyFixture.AcmeKey, "/trtllm/v1/chat/completions", new
        {
            model = "stories260K:story", messages = new[] { new { role = "user", content = "hi" } },
        });
        Assert.Equal(422, status);
        Assert.Equal("dialect_mismatch", body.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_refusal_from_triton_comes_back_as_openai_error_json_with_its_status()
    {
        var (status, body) = await f.Post(ProxyFixture.AcmeKey, "/trtllm/v1/completions", new
        {
            model = "stories260K:story", prompt = Prompt, max_tokens = FakeTritonTrtLlm.MaxOutputLen + 1,
        });
        Assert.Equal(400, status);
        JsonElement error = body.GetProperty("error");
        Assert.Equal("backend_error", error.GetProperty("code").GetString());
        Assert.StartsWith("TensorRT-LLM: ", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Sampling_fields_become_the_models_inputs()
    {
        while (f.TritonBodies.TryDequeue(out _)) { }
        var (status, _) = await f.Post(ProxyFixture.AcmeKey, "/trtllm/v1/completions", new
        {
            model = "stories260K:story", prompt = Prompt, max_tokens = 4, temperature = 0.5, top_p = 0.9,
            top_k = 40, seed = 7, presence_penalty = 0.25,
        });
        Assert.Equal(200, status);
        Assert.True(f.TritonBodies.TryDequeue(out string? forwarded));
        JsonElement body = JsonDocument.Parse(forwarded!).RootElement;
        Assert.Equal(0.5, body.GetProperty("temperature").GetDouble());
        Assert.Equal(0.9, body.GetProperty("runtime_top_p").GetDouble());
        Assert.Equal(40, body.GetProperty("runtime_top_k").GetInt32());
        Assert.Equal(7UL, body.GetProperty("random_seed").GetUInt64());
        Assert.Equal(0.25, body.GetProperty("presence_penalty").GetDouble());
        Assert.False(body.GetProperty("streaming").GetBoolean());
    }
}
