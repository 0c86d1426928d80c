using System.Text.Json;

namespace LoPAProxy.ModelServer.Tests;

public class ChatTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static string Content(JsonElement body) => body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

    [Fact]
    public async Task Chat_with_text_and_an_embeds_part_in_place()
    {
        var (status, plain) = await server.PostAsync("/v1/chat/completions", new { model = "stories260K", messages = new[] { new { role = "user", content = "Tom had a red kite" } }, max_tokens = 12, temperature = 0 });
        Assert.Equal(200, status);
        Assert.StartsWith(". He liked", Content(plain));
        Assert.Equal("chat.completion", plain.GetProperty("object").GetString());
        Assert.Equal("assistant", plain.GetProperty("choices")[0].GetProperty("message").GetProperty("role").GetString());

        // The same prompt, with the words "Tom had" sent as their embedding rows in a prompt_embeds part.
        var tok = ServerFixture.Tokenizer.Value;
        int[] tomHad = tok.Encode("Tom had", false, false);
        int[] full = tok.Encode("Tom had a red kite", false, false);
        Assert.Equal(tomHad, full.Take(tomHad.Length)); // the split falls on a token boundary
        var parts = new object[]
        {
            new { type = "prompt_embeds", data = ServerFixture.EmbedsBase64(tomHad) },
            new { type = "text", text = " a red kite" },
        };
        var (s2, mixed) = await server.PostAsync("/v1/chat/completions", new { messages = new[] { new { role = "user", content = parts } }, max_tokens = 12, temperature = 0 });
        Assert.Equal(200, s2);
        Assert.Equal(Content(plain), Content(mixed));
        Assert.Equal(plain.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), mixed.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Chat_streams_role_then_content_deltas_then_done()
    {
        var (events, done, _) = await server.StreamAsync("/v1/chat/completions", new { messages = new[] { new { role = "user", content = "Once upon a time" } }, max_tokens = 10, temperature = 0, stream = true });
        Assert.True(done);
        Assert.Equal("chat.completion.chunk", events[0].GetProperty("object").GetString());
        Assert.Equal("assistant", events[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        string text = string.Concat(events.Select(e => e.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out var c) ? c.GetString() : ""));
        var (_, whole) = await server.PostAsync("/v1/chat/completions", new { messages = new[] { new { role = "user", content = "Once upon a time" } }, max_tokens = 10, temperature = 0 });
        Assert.Equal(Content(whole), text);
        Assert.Equal("length", events[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task The_placeholder_string_in_text_is_refused()
    {
        var (status, body) = await server.PostAsync("/v1/chat/completions", new { messages = new[] { new { role = "user", content = "hello <prompt_embeds> there" } } });
        Assert.Equal(400, status);
        Assert.Equal("placeholder_in_text", body.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("messages[0].content", body.GetProperty("error").GetProperty("param").GetString());
    }
}
