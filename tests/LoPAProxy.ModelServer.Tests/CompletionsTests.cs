using System.Globalization;
using System.Text.Json;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.ModelServer.Tests;

public class CompletionsTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    // run.c, greedy, steps=48 printed "Tom had a red kite" + this (../shared/models/README.md): 48 − P + 1 new tokens.
    private const string KiteContinuation = ". He liked to play with his toys and run around the room. He liked to play with his toys and run arou";
    private static int KiteTokens =>
        48 - ServerFixture.Tokenizer.Value.Encode("Tom had a red kite", true, false).Length + 1;

    private static string Text(JsonElement body, int i = 0) => body.GetProperty("choices")[i].GetProperty("text").GetString()!;

    /// <summary>#25 item 3: logit_bias as OpenAI defines it — −100 bans a token, +100 all but forces it — applied
    /// before the greedy pick (llama.cpp's logit-bias sampler).</summary>
    [Fact]
    public async Task Logit_bias_bans_and_forces_tokens()
    {
        int dot = ServerFixture.Tokenizer.Value.Encode(".", false, false, continuation: true).Single();
        Assert.StartsWith(".", KiteContinuation, StringComparison.Ordinal); // run.c's greedy answer begins with it
        var bias = (int value) => new Dictionary<string, int> { [dot.ToString(CultureInfo.InvariantCulture)] = value };
        var (status, banned) = await server.PostAsync("/v1/completions",
            new { prompt = "Tom had a red kite", max_tokens = 8, temperature = 0, logit_bias = bias(-100) });
        Assert.Equal(200, status);
        Assert.False(Text(banned).StartsWith('.'), Text(banned));
        var (_, forced) = await server.PostAsync("/v1/completions",
            new { prompt = "Tom had a red kite", max_tokens = 6, temperature = 0, logit_bias = bias(100) });
        Assert.Equal("......", Text(forced));
        var (_, neutral) = await server.PostAsync("/v1/completions",
            new { prompt = "Tom had a red kite", max_tokens = 8, temperature = 0, logit_bias = bias(0) });
        Assert.StartsWith(Text(neutral), KiteContinuation, StringComparison.Ordinal);
    }

    /// <summary>#25 item 3: response_format json_object through a llama.cpp grammar — the answer is JSON: one object
    /// System.Text.Json parses when the model closed it, the start of one (every byte valid so far) when max_tokens
    /// cut it (stories260K writes members until the cut; OpenAI's own json_object can end the same way).</summary>
    [Theory]
    [InlineData("/v1/completions", 200)]
    [InlineData("/v1/chat/completions", 200)]
    [InlineData("/v1/completions", 7)]
    public async Task A_json_object_response_format_gives_json(string path, int maxTokens)
    {
        object format = new { type = "json_object" };
        object request = path.Contains("chat", StringComparison.Ordinal)
            ? new
            {
                messages = new[] { new { role = "user", content = "Tom had a red kite" } }, max_tokens = maxTokens,
                temperature = 0, response_format = format,
            }
            : new { prompt = "Tom had a red kite", max_tokens = maxTokens, temperature = 0, response_format = format };
        var (status, body) = await server.PostAsync(path, request);
        Assert.Equal(200, status);
        JsonElement choice = body.GetProperty("choices")[0];
        string text = choice.TryGetProperty("text", out JsonElement t) ? t.GetString()!
            : choice.GetProperty("message").GetProperty("content").GetString()!;
        string finish = choice.GetProperty("finish_reason").GetString()!;
        Assert.True(finish is "stop" or "length", finish);
        if (finish == "stop")
        {
            using JsonDocument parsed = JsonDocument.Parse(text);
            Assert.Equal(JsonValueKind.Object, parsed.RootElement.ValueKind);
            return;
        }
        // Cut short: a valid beginning of a JSON object (the reader asks for more, it never finds an error).
        var reader = new Utf8JsonReader(System.Text.Encoding.UTF8.GetBytes(text), isFinalBlock: false,
            new JsonReaderState());
        Assert.True(reader.Read(), text);
        Assert.Equal(JsonTokenType.StartObject, reader.TokenType);
        while (reader.Read())
        {
            // Every token read is valid JSON; an invalid byte would throw here.
        }
        Assert.True(reader.CurrentDepth > 0 || reader.BytesConsumed < text.Length, $"complete yet cut: {text}");
    }

    [Fact]
    public async Task Models_lists_the_served_model()
    {
        string json = await server.Client.GetStringAsync("/v1/models");
        JsonElement data = JsonDocument.Parse(json).RootElement.GetProperty("data")[0];
        Assert.Equal("stories260K", data.GetProperty("id").GetString());
        Assert.Equal(64, data.GetProperty("hidden_size").GetInt32());
    }

    [Fact]
    public async Task Greedy_text_completion_continues_like_run_c()
    {
        var (status, body) = await server.PostAsync("/v1/completions", new { model = "stories260K", prompt = "Tom had a red kite", max_tokens = KiteTokens, temperature = 0 });
        Assert.Equal(200, status);
        Assert.Equal(KiteContinuation, Text(body));
        Assert.Equal("length", body.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal("text_completion", body.GetProperty("object").GetString());
        JsonElement usage = body.GetProperty("usage");
        Assert.Equal(KiteTokens, usage.GetProperty("completion_tokens").GetInt32());
        int promptTokens = ServerFixture.Tokenizer.Value.Encode("Tom had a red kite", true, false).Length;
        Assert.Equal(promptTokens, usage.GetProperty("prompt_tokens").GetInt32());
    }

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.BF16)]
    [InlineData(DType.F16)]
    public async Task Prompt_embeds_of_the_prompt_tokens_give_the_text_prompts_continuation(DType dtype)
    {
        int[] tokens = ServerFixture.Tokenizer.Value.Encode("Tom had a red kite", true, false);
        var (_, viaText) = await server.PostAsync("/v1/completions", new { prompt = "Tom had a red kite", max_tokens = 20, temperature = 0 });
        var (status, viaEmbeds) = await server.PostAsync("/v1/completions", new { prompt_embeds = ServerFixture.EmbedsBase64(tokens, dtype), max_tokens = 20, temperature = 0 });
        Assert.Equal(200, status);
        if (dtype == DType.F32) Assert.Equal(Text(viaText), Text(viaEmbeds));
        else Assert.StartsWith(". He liked", Text(viaEmbeds)); // rounded rows: still the same story opening
        Assert.Equal(tokens.Length, viaEmbeds.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Embeds_written_by_real_pytorch_with_a_leading_batch_dim_are_squeezed()
    {
        int[] tokens = ServerFixture.Tokenizer.Value.Encode("Tom had a red kite", true, false);
        float[] rows = ServerFixture.EmbeddingRows(tokens);
        string dir = TempDir.Create(), input = Path.Combine(dir, "rows.bin");
        File.WriteAllBytes(input, rows.SelectMany(BitConverter.GetBytes).ToArray());
        string b64 = PyTorch.Run("""
            import sys, io, base64, torch
            x = torch.frombuffer(bytearray(open(sys.argv[1], 'rb').read()), dtype=torch.float32).reshape(1, -1, 64).clone()
            buf = io.BytesIO(); torch.save(x, buf)
            print(base64.b64encode(buf.getvalue()).decode())
            """, input).Trim();
        var (status, body) = await server.PostAsync("/v1/completions", new { prompt_embeds = b64, max_tokens = KiteTokens, temperature = 0 });
        Assert.Equal(200, status);
        Assert.Equal(KiteContinuation, Text(body));
    }

    [Fact]
    public async Task Prompt_and_prompt_embeds_are_separate_prompts_embeds_first()
    {
        int[] tokens = ServerFixture.Tokenizer.Value.Encode("Lily went to the park", true, false);
        var (status, body) = await server.PostAsync("/v1/completions", new { prompt = "Tom had a red kite", prompt_embeds = ServerFixture.EmbedsBase64(tokens), max_tokens = 10, temperature = 0 });
        Assert.Equal(200, status);
        var (_, lily) = await server.PostAsync("/v1/completions", new { prompt = "Lily went to the park", max_tokens = 10, temperature = 0 });
        Assert.Equal(2, body.GetProperty("choices").GetArrayLength());
        Assert.Equal(Text(lily), Text(body, 0));
        Assert.StartsWith(". He liked", Text(body, 1));
        Assert.Equal(1, body.GetProperty("choices")[1].GetProperty("index").GetInt32());
    }

    [Fact]
    public async Task Prompt_lists_token_ids_n_seed_and_stop()
    {
        var (_, many) = await server.PostAsync("/v1/completions", new { prompt = new[] { "Tom had a red kite", "Once upon a time" }, max_tokens = 8, temperature = 0 });
        Assert.Equal(2, many.GetProperty("choices").GetArrayLength());
        int[] ids = ServerFixture.Tokenizer.Value.Encode("Tom had a red kite", true, false);
        var (_, byIds) = await server.PostAsync("/v1/completions", new { prompt = ids, max_tokens = 8, temperature = 0 });
        Assert.Equal(Text(many, 0), Text(byIds));

        var request = new { prompt = "Once upon a time", max_tokens = 30, temperature = 1.0, top_p = 0.9, n = 3, seed = 7 };
        var (_, a) = await server.PostAsync("/v1/completions", request);
        var (_, b) = await server.PostAsync("/v1/completions", request);
        Assert.Equal(3, a.GetProperty("choices").GetArrayLength());
        for (int i = 0; i < 3; i++) Assert.Equal(Text(a, i), Text(b, i));
        Assert.True(Text(a, 0) != Text(a, 1) || Text(a, 1) != Text(a, 2), "n samples from one seed should differ");

        var (_, stopped) = await server.PostAsync("/v1/completions", new { prompt = "Tom had a red kite", max_tokens = 40, temperature = 0, stop = new[] { "toys" } });
        Assert.Equal(". He liked to play with his ", Text(stopped));
        Assert.Equal("stop", stopped.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        var (_, echoed) = await server.PostAsync("/v1/completions", new { prompt = "Tom had a red kite", max_tokens = 3, temperature = 0, echo = true });
        Assert.StartsWith("Tom had a red kite. He", Text(echoed));
    }

    [Fact]
    public async Task Streaming_sends_chunks_then_done_and_matches_the_whole_answer()
    {
        var request = new { prompt = "Tom had a red kite", max_tokens = 25, temperature = 0, stop = "run", stream = true, stream_options = new { include_usage = true } };
        var (events, done, type) = await server.StreamAsync("/v1/completions", request);
        Assert.True(done);
        Assert.Equal("text/event-stream", type);
        var (_, whole) = await server.PostAsync("/v1/completions", new { prompt = "Tom had a red kite", max_tokens = 25, temperature = 0, stop = "run" });
        var choiceEvents = events.Where(e => e.GetProperty("choices").GetArrayLength() > 0).ToList();
        Assert.True(choiceEvents.Count > 5, "tokens arrive as separate chunks");
        Assert.Equal(Text(whole), string.Concat(choiceEvents.Select(e => Text(e))));
        Assert.Equal("stop", choiceEvents[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        JsonElement usage = events[^1].GetProperty("usage");
        Assert.Equal(whole.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), usage.GetProperty("completion_tokens").GetInt32());
    }
}
