using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using LoPAProxy.Engine.Formats.Torch;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Proxy.Tests;

public class ProxyRequestTests(ProxyFixture f) : IClassFixture<ProxyFixture>
{
    private static string Text(JsonElement body) => body.GetProperty("choices")[0].TryGetProperty("message", out var m) ? m.GetProperty("content").GetString()! : body.GetProperty("choices")[0].GetProperty("text").GetString()!;

    /// <summary>Z for an instance, computed the way `lopa encode` does (adapter from disk, fm-mean encoder).</summary>
    private float[] ExpectedZ(string tenant, string adapter, string instance) => f.ExpectedZ(tenant, adapter, instance);

    [Fact]
    public async Task A_request_without_an_adapter_passes_through_untouched()
    {
        var request = new { model = "stories260K", messages = new[] { new { role = "user", content = "Tom had a red kite" } }, max_tokens = 10, temperature = 0 };
        var (status, viaProxy) = await f.Post(ProxyFixture.AcmeKey, "/v1/chat/completions", request);
        Assert.Equal(200, status);
        var direct = await (await f.Direct.PostAsJsonAsync("/v1/chat/completions", request)).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(Text(direct), Text(viaProxy));
        var (_, _) = await f.Post(ProxyFixture.AcmeKey, "/capture/v1/chat/completions", new { model = "stories260K", messages = new[] { new { role = "user", content = "hi" } } });
        using var doc = JsonDocument.Parse(f.Captured["/v1/chat/completions"]);
        Assert.Equal("hi", doc.RootElement.GetProperty("messages")[0].GetProperty("content").GetString());
        using var models = f.Client(ProxyFixture.AcmeKey);
        Assert.Contains("stories260K", await models.GetStringAsync("/v1/models"));
    }

    [Fact]
    public async Task The_forwarded_body_decodes_as_vllm_decodes_it_to_the_adapters_soft_prompt()
    {
        const string instance = "Lily and Ben went to the park <prompt_embeds> today";
        var (status, _) = await f.Post(ProxyFixture.AcmeKey, "/capture/v1/chat/completions",
            new { model = "stories260K:story", messages = new object[] { new { role = "system", content = "Be kind." }, new { role = "user", content = instance } }, max_tokens = 5 });
        Assert.Equal(200, status);
        string forwarded = f.Captured["/v1/chat/completions"];
        using var doc = JsonDocument.Parse(forwarded);
        JsonElement root = doc.RootElement;
        Assert.Equal("stories260K", root.GetProperty("model").GetString());
        JsonElement parts = root.GetProperty("messages")[1].GetProperty("content");
        Assert.Equal("prompt_embeds", parts[0].GetProperty("type").GetString());
        Assert.Equal("text", parts[1].GetProperty("type").GetString());
        Assert.DoesNotContain("<prompt_embeds>", parts[1].GetProperty("text").GetString(), StringComparison.Ordinal); // neutralised (vLLM checks ordinally)
        // vLLM's decode: strict base64 → torch.load(weights_only=True) → squeeze → hidden size check.
        string file = Path.Combine(TempDir.Create(), "body.json");
        File.WriteAllText(file, forwarded);
        string[] decoded = PyTorch.Run("""
            import sys, json, base64, binascii, io, torch
            body = json.load(open(sys.argv[1]))
            data = [p for p in body['messages'][1]['content'] if p['type'] == 'prompt_embeds'][0]['data']
            raw = binascii.a2b_base64(data.encode(), strict_mode=True) if sys.version_info >= (3, 11) else base64.b64decode(data, validate=True)
            t = torch.load(io.BytesIO(raw), weights_only=True, map_location='cpu')
            if t.dim() == 3: t = t.squeeze(0)
            assert t.dim() == 2 and t.shape[1] == 64, t.shape
            print(str(t.dtype), list(t.shape))
            print(' '.join(repr(float(v)) for v in t.flatten()))
            """, file).Trim().Split('\n');
        Assert.Equal("torch.float32 [4, 64]", decoded[0]);
        float[] fromVllm = decoded[1].Split(' ').Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        // The instance is the user text as sent (before neutralising), exactly what `lopa encode --text` would get.
        Assert.Equal(ExpectedZ("acme", "story", instance.Replace("<prompt_embeds>", "<prompt_embeds\u200B>")), fromVllm);
    }

    [Fact]
    public async Task Chat_through_the_reference_server_with_an_adapter_by_model_suffix_or_header()
    {
        var bySuffix = new { model = "stories260K:story", messages = new[] { new { role = "user", content = "Tom had a red kite" } }, max_tokens = 12, temperature = 0 };
        var (s1, a) = await f.Post(ProxyFixture.AcmeKey, "/v1/chat/completions", bySuffix);
        var (s2, b) = await f.Post(ProxyFixture.AcmeKey, "/v1/chat/completions", bySuffix with { model = "stories260K" }, adapterHeader: "story");
        Assert.Equal((200, 200), (s1, s2));
        Assert.Equal(Text(a), Text(b));
        // The server saw 4 soft-prompt rows more than the plain conversation.
        var (_, plain) = await f.Post(ProxyFixture.AcmeKey, "/v1/chat/completions", bySuffix with { model = "stories260K" });
        Assert.Equal(plain.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() + 4, a.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Completions_send_the_whole_sequence_as_embeddings()
    {
        var (status, viaProxy) = await f.Post(ProxyFixture.AcmeKey, "/v1/completions", new { model = "stories260K:story", prompt = "Tom had a red kite", max_tokens = 12, temperature = 0 });
        Assert.Equal(200, status);
        // The same request made by hand: [Z ; embedding rows of BOS + prompt tokens].
        int[] ids = ProxyFixture.References.Value.Tokenizer.Encode("Tom had a red kite", true, false);
        float[] z = ExpectedZ("acme", "story", "Tom had a red kite");
        float[] rows = z.Concat(ProxyFixture.EmbeddingRows(ids)).ToArray();
        string b64 = Convert.ToBase64String(TorchFile.SaveTensor(Tensor.FromArray(rows, 4 + ids.Length, 64)));
        var direct = await (await f.Direct.PostAsJsonAsync("/v1/completions", new { prompt_embeds = b64, max_tokens = 12, temperature = 0 })).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(Text(direct), Text(viaProxy));
        Assert.Equal(4 + ids.Length, viaProxy.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Streams_arrive_chunk_by_chunk_and_end_with_done()
    {
        using var c = f.Client(ProxyFixture.AcmeKey);
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = "stories260K:story", messages = new[] { new { role = "user", content = "Once upon a time" } }, max_tokens = 20, temperature = 0, stream = true }),
        };
        using var response = await c.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var events = new List<string>();
        while (await reader.ReadLineAsync() is { } line) if (line.StartsWith("data: ", StringComparison.Ordinal)) events.Add(line[6..]);
        Assert.Equal("[DONE]", events[^1]);
        Assert.True(events.Count > 10, $"{events.Count} events");
    }

    [Fact]
    public async Task The_official_openai_client_works_unmodified()
    {
        JsonElement r = await f.RunOpenAiScriptAsync("openai-client.mjs");
        Assert.False(string.IsNullOrEmpty(r.GetProperty("chat").GetString()));
        Assert.False(string.IsNullOrEmpty(r.GetProperty("completion").GetString()));
        Assert.True(r.GetProperty("chunks").GetInt32() > 3);
        Assert.False(string.IsNullOrEmpty(r.GetProperty("streamed").GetString()));
        Assert.Equal(401, r.GetProperty("error").GetProperty("status").GetInt32());
        Assert.Equal("invalid_api_key", r.GetProperty("error").GetProperty("code").GetString());
        JsonElement retrieved = r.GetProperty("retrieved");
        Assert.Equal("stories260K:story", retrieved.GetProperty("id").GetString());
        Assert.Equal("model", retrieved.GetProperty("object").GetString());
        Assert.Equal("acme", retrieved.GetProperty("owned_by").GetString());
        Assert.Equal(404, r.GetProperty("missing").GetProperty("status").GetInt32());
        Assert.Equal("model_not_found", r.GetProperty("missing").GetProperty("code").GetString());
    }
}

public class SglangDialectTests(ProxyFixture f) : IClassFixture<ProxyFixture>
{
    [Fact]
    public async Task Sglang_gets_input_embeds_on_generate_and_the_answer_comes_back_in_openai_shape()
    {
        var request = new { model = "stories260K:story", prompt = "Tom had a red kite", max_tokens = 12, temperature = 0 };
        var (status, viaSglang) = await f.Post(ProxyFixture.AcmeKey, "/sglang/v1/completions", request);
        Assert.Equal(200, status);
        var (_, viaVllm) = await f.Post(ProxyFixture.AcmeKey, "/v1/completions", request);
        string text = viaSglang.GetProperty("choices")[0].GetProperty("text").GetString()!;
        Assert.Equal(viaVllm.GetProperty("choices")[0].GetProperty("text").GetString(), text);
        Assert.Equal("text_completion", viaSglang.GetProperty("object").GetString());
        Assert.Equal("length", viaSglang.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(viaVllm.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), viaSglang.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.True(f.SglangBodies.TryDequeue(out string? forwarded));
        using var doc = JsonDocument.Parse(forwarded!);
        Assert.Equal(12, doc.RootElement.GetProperty("sampling_params").GetProperty("max_new_tokens").GetInt32());
        Assert.False(doc.RootElement.TryGetProperty("prompt", out _));

        // Streaming: deltas that add up to the same text, then [DONE].
        using var c = f.Client(ProxyFixture.AcmeKey);
        var streamRequest = new HttpRequestMessage(HttpMethod.Post, "/sglang/v1/completions")
        {
            Content = JsonContent.Create(new { model = "stories260K:story", prompt = "Tom had a red kite", max_tokens = 12, temperature = 0, stream = true }),
        };
        using var response = await c.SendAsync(streamRequest, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var events = new List<string>();
        while (await reader.ReadLineAsync() is { } line) if (line.StartsWith("data: ", StringComparison.Ordinal)) events.Add(line[6..]);
        Assert.Equal("[DONE]", events[^1]);
        string streamed = string.Concat(events.Take(events.Count - 1).Select(e => JsonDocument.Parse(e).RootElement.GetProperty("choices")[0].GetProperty("text").GetString()));
        Assert.Equal(text, streamed);
        Assert.Equal("length", JsonDocument.Parse(events[^2]).RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Theory]
    [InlineData("logprobs", "2")]
    [InlineData("n", "2")]
    [InlineData("echo", "true")]
    [InlineData("logit_bias", "{\"5\": 10}")]
    public async Task What_sglang_is_not_given_is_refused_by_name_never_dropped(string field, string value)
    {
        string body = "{\"model\": \"stories260K:story\", \"prompt\": \"Tom\", \"max_tokens\": 4, " +
            $"\"{field}\": {value}}}";
        var (status, text) = await f.PostRaw(ProxyFixture.AcmeKey, "/sglang/v1/completions", body);
        Assert.Equal(400, status);
        JsonElement error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Equal(field, error.GetProperty("param").GetString());
        Assert.Equal("unsupported_parameter", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Sglang_gets_the_penalties_and_a_harmless_default_passes()
    {
        while (f.SglangBodies.TryDequeue(out _)) { }
        string body = "{\"model\": \"stories260K:story\", \"prompt\": \"Tom\", \"max_tokens\": 4, \"n\": 1, " +
            "\"logprobs\": null, \"frequency_penalty\": 0.5, \"presence_penalty\": 0.25, \"user\": \"u1\"}";
        var (status, text) = await f.PostRaw(ProxyFixture.AcmeKey, "/sglang/v1/completions", body);
        Assert.True(status == 200, text);
        Assert.True(f.SglangBodies.TryDequeue(out string? forwarded));
        JsonElement sampling = JsonDocument.Parse(forwarded!).RootElement.GetProperty("sampling_params");
        Assert.Equal(0.5, sampling.GetProperty("frequency_penalty").GetDouble());
        Assert.Equal(0.25, sampling.GetProperty("presence_penalty").GetDouble());
    }

    [Fact]
    public async Task Chat_with_an_adapter_on_an_sglang_route_is_422()
    {
        var (status, body) = await f.Post(ProxyFixture.AcmeKey, "/sglang/v1/chat/completions", new { model = "stories260K:story", messages = new[] { new { role = "user", content = "hi" } } });
        Assert.Equal(422, status);
        Assert.Equal("dialect_mismatch", body.GetProperty("error").GetProperty("code").GetString());
    }
}
