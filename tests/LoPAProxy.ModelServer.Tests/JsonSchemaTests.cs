using System.Text.Json;
using System.Text.Json.Nodes;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.ModelServer.Tests;

/// <summary>
/// #25 item 3: response_format json_schema through a llama.cpp grammar built from the schema. Every answer the model
/// closes is checked by an independent validator (Ajv, tests/node/json-schema-validate.mjs) against its schema, at
/// temperature 0 and sampled; a keyword outside the grammar's subset is a 400 naming it.
/// </summary>
public class JsonSchemaTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    public static readonly TheoryData<string> Schemas = new()
    {
        """
        {"type":"object","properties":{"sentiment":{"enum":["positive","negative"]},"score":{"type":"integer"}},
         "required":["sentiment","score"],"additionalProperties":false}
        """,
        """{"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"null"},"c":{"const":3}}}""",
        """{"type":"array","items":{"enum":[1,2,"three"]}}""",
        """
        {"type":"object","properties":{"name":{"type":"string"},"tags":{"type":"array","items":{"type":"string"}}},
         "required":["name"]}
        """,
        """
        {"anyOf":[{"type":["boolean","null"]},
                  {"type":"object","properties":{"n":{"type":"number"}},"required":["n"]}]}
        """,
        """
        {"$defs":{"node":{"type":"object","properties":{"leaf":{"type":"boolean"},
           "kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["leaf"]}},
         "$ref":"#/$defs/node"}
        """,
    };

    [Theory]
    [MemberData(nameof(Schemas))]
    public async Task Every_closed_answer_is_valid_under_its_schema(string schemaText)
    {
        JsonNode schema = JsonNode.Parse(schemaText)!;
        var cases = new JsonArray();
        int stopped = 0;
        foreach (int seed in new[] { -1, 1, 2, 3, 4, 5, 6, 7 })
        {
            var (status, body) = await server.PostAsync("/v1/chat/completions", Request(schema, seed));
            Assert.True(status == 200, body.ToString());
            JsonElement choice = body.GetProperty("choices")[0];
            string text = choice.GetProperty("message").GetProperty("content").GetString()!;
            if (choice.GetProperty("finish_reason").GetString() != "stop")
            {
                AssertJsonPrefix(text);
                continue;
            }
            stopped++;
            cases.Add(new JsonObject { ["schema"] = schema.DeepClone(), ["text"] = text });
        }
        // stories260K rambles inside a free string or array until max_tokens cuts it; enums and objects close.
        Assert.True(stopped >= 1, "no answer closed within the token budget");
        string file = Path.Combine(TempDir.Create(), "cases.json");
        await File.WriteAllTextAsync(file, cases.ToJsonString());
        JsonElement[] results = JsonDocument.Parse(Node.Run("json-schema-validate.mjs", file)).RootElement
            .EnumerateArray().ToArray();
        for (int i = 0; i < results.Length; i++)
            Assert.True(results[i].GetProperty("valid").GetBoolean(), $"{cases[i]!["text"]}: {results[i]}");
    }

    [Theory]
    [InlineData("""{"type":"string","pattern":"^a+$"}""", "'pattern'")]
    [InlineData("""{"type":"object","properties":{"d":{"type":"string","format":"date"}}}""", "'format'")]
    [InlineData("""{"type":"integer","minimum":3}""", "'minimum'")]
    [InlineData("""{"allOf":[{"type":"string"}]}""", "'allOf'")]
    [InlineData("""{"$ref":"https://example.com/schema.json"}""", "'$ref'")]
    [InlineData("""{"type":"object","properties":{},"required":["x"]}""", "required")]
    [InlineData("""{"type":"tuple"}""", "tuple")]
    public async Task A_schema_outside_the_grammars_subset_is_refused_naming_the_keyword(string schemaText,
        string named)
    {
        var (status, body) = await server.PostAsync("/v1/chat/completions", Request(JsonNode.Parse(schemaText)!, 0));
        Assert.Equal(400, status);
        JsonElement error = body.GetProperty("error");
        Assert.Equal("response_format", error.GetProperty("param").GetString());
        Assert.Equal("unsupported_parameter", error.GetProperty("code").GetString());
        Assert.Contains(named, error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_schema_nested_past_the_depth_limit_is_refused_not_recursed_into()
    {
        // 40 levels: within the JSON reader's depth (64), past the grammar's (32).
        string schema = string.Concat(Enumerable.Repeat("""{"type":"array","items":""", 40)) + "true" +
            new string('}', 40);
        string request = """{"prompt":"Hi","max_tokens":1,"response_format":{"type":"json_schema",""" +
            """ "json_schema":{"name":"deep","schema":""" + schema + "}}}";
        var (status, body) = await server.PostRawAsync("/v1/completions", request);
        Assert.Equal(400, status);
        Assert.Contains("deeper", body.GetProperty("error").GetProperty("message").GetString(),
            StringComparison.Ordinal);
    }

    /// <summary>A cut answer is the valid beginning of a JSON text (the reader asks for more, it finds no error).
    /// </summary>
    private static void AssertJsonPrefix(string text)
    {
        var reader = new Utf8JsonReader(System.Text.Encoding.UTF8.GetBytes(text), isFinalBlock: false,
            new JsonReaderState());
        while (reader.Read())
        {
            // An invalid byte would throw.
        }
    }

    /// <summary>A chat request for JSON under <paramref name="schema"/>; seed −1 is greedy.</summary>
    private static object Request(JsonNode schema, int seed) => new
    {
        messages = new[] { new { role = "user", content = "Tom had a red kite" } }, max_tokens = 160,
        temperature = seed < 0 ? 0 : 1, seed = Math.Max(seed, 0),
        response_format = new
        {
            type = "json_schema",
            json_schema = new { name = "answer", strict = true, schema = schema.DeepClone() },
        },
    };
}
