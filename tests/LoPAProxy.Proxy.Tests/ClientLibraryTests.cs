using System.Text.Json;

namespace LoPAProxy.Proxy.Tests;

/// <summary>
/// Clients nobody here wrote, unmodified, against the proxy with an adapter (tests/node): the Vercel AI SDK's default
/// provider (the Responses API) and its chat provider, and LangChain's ChatOpenAI. At temperature 0 every path gives
/// the soft-prompted model's same greedy text.
/// </summary>
public class ClientLibraryTests(ProxyFixture f) : IClassFixture<ProxyFixture>
{
    [Fact]
    public async Task The_vercel_ai_sdk_generates_and_streams_through_the_responses_api_and_chat()
    {
        JsonElement r = await f.RunOpenAiScriptAsync("vercel-ai.mjs");
        string chat = r.GetProperty("chat").GetProperty("text").GetString()!;
        Assert.False(string.IsNullOrWhiteSpace(chat));
        foreach (string path in new[] { "generated", "streamed", "chat" })
        {
            JsonElement result = r.GetProperty(path);
            Assert.Equal(chat, result.GetProperty("text").GetString());
            Assert.True(result.GetProperty("inputTokens").GetInt32() > 0, path);
            Assert.InRange(result.GetProperty("outputTokens").GetInt32(), 1, 12);
        }
    }

    [Fact]
    public async Task Langchain_invokes_streams_uses_the_responses_api_and_gets_structured_output()
    {
        JsonElement r = await f.RunOpenAiScriptAsync("langchain.mjs");
        string invoked = r.GetProperty("invoked").GetProperty("text").GetString()!;
        Assert.False(string.IsNullOrWhiteSpace(invoked));
        Assert.Equal(invoked, r.GetProperty("streamed").GetString());
        Assert.Equal(invoked, r.GetProperty("responses").GetProperty("text").GetString());
        JsonElement usage = r.GetProperty("invoked").GetProperty("usage");
        Assert.True(usage.GetProperty("input_tokens").GetInt32() > 0);
        // withStructuredOutput sends the schema as response_format json_schema; the reference server's grammar makes
        // the soft-prompted model answer in it, and LangChain parses the object.
        string sentiment = r.GetProperty("structured").GetProperty("sentiment").GetString()!;
        Assert.Contains(sentiment, new[] { "positive", "negative" });
    }

    /// <summary>The official client through the proxy with an adapter to the reference server: JSON output
    /// (json_object: an object, or its valid beginning when max_tokens cuts it), JSON under a schema on chat and on
    /// the Responses API, a schema keyword outside the grammar refused by name, a token forced by logit_bias, and
    /// logprobs.</summary>
    [Fact]
    public async Task The_openai_client_gets_json_schemas_logprobs_and_steers_tokens_with_a_soft_prompt()
    {
        int dot = ProxyFixture.References.Value.Tokenizer.Encode(".", false, false, continuation: true).Single();
        var environment = new Dictionary<string, string>
        {
            ["DOT_TOKEN"] = dot.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        JsonElement r = await f.RunOpenAiScriptAsync("openai-structured.mjs", environment: environment);
        string json = r.GetProperty("json").GetProperty("text").GetString()!;
        var reader = new Utf8JsonReader(System.Text.Encoding.UTF8.GetBytes(json),
            isFinalBlock: r.GetProperty("json").GetProperty("finish").GetString() == "stop", new JsonReaderState());
        Assert.True(reader.Read(), json);
        Assert.Equal(JsonTokenType.StartObject, reader.TokenType);
        while (reader.Read())
        {
            // An invalid byte would throw.
        }
        Assert.Equal("....", r.GetProperty("forced").GetString());
        string[] sentiments = ["positive", "negative"];
        Assert.Contains(r.GetProperty("schemaChat").GetProperty("sentiment").GetString(), sentiments);
        JsonElement response = r.GetProperty("schemaResponse");
        Assert.Contains(response.GetProperty("parsed").GetProperty("sentiment").GetString(), sentiments);
        Assert.Equal("json_schema", response.GetProperty("format").GetString());
        JsonElement refused = r.GetProperty("refused");
        Assert.Equal(400, refused.GetProperty("status").GetInt32());
        Assert.Equal("response_format", refused.GetProperty("param").GetString());
        Assert.Contains("'pattern'", refused.GetProperty("message").GetString(), StringComparison.Ordinal);
        JsonElement logprobs = r.GetProperty("logprobs");
        string[] tokens = logprobs.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).ToArray();
        Assert.Equal(logprobs.GetProperty("completionTokens").GetInt32(), tokens.Length);
        Assert.Equal(logprobs.GetProperty("text").GetString(), string.Concat(tokens));
        Assert.All(logprobs.GetProperty("logprobs").EnumerateArray(), l => Assert.True(l.GetDouble() <= 0));
        Assert.All(logprobs.GetProperty("alternatives").EnumerateArray(), n => Assert.Equal(2, n.GetInt32()));
    }
}
