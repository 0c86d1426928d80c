using System.Globalization;
using System.Text.Json;
using LoPAProxy.ModelServer.Generation;
using LoPAProxy.OpenAi;

namespace LoPAProxy.ModelServer.Endpoints;

/// <summary>The sampling and output fields completions and chat share, validated. TopLogprobs is null when no
/// logprobs were asked for (chat: logprobs true with top_logprobs 0–20; completions: logprobs 0–20).</summary>
internal sealed record SamplingRequest(int? MaxTokens, float Temperature, float TopP, int TopK, uint Seed, int N,
    string[] Stop, bool Stream, bool IncludeUsage, bool IgnoreEos, IReadOnlyList<TokenBias> LogitBias,
    string? Grammar, int? TopLogprobs)
{
    /// <summary>At most this many logit_bias entries (OpenAI's own limit is 300).</summary>
    public const int MaxLogitBias = 300;

    public static SamplingRequest Parse(JsonElement body, ModelServerOptions options, bool chat, int vocabSize)
    {
        int? maxTokens = JsonFields.Int(body, chat && JsonFields.Get(body, "max_completion_tokens") is not null ? "max_completion_tokens" : "max_tokens", 1, options.MaxTokensLimit);
        if (!chat) maxTokens ??= 16; // OpenAI's completions default
        double temperature = JsonFields.Number(body, "temperature", 0, 2) ?? 1.0;
        double topP = JsonFields.Number(body, "top_p", double.Epsilon, 1) ?? 1.0;
        int topK = JsonFields.Int(body, "top_k", -1, 1 << 20) ?? -1;
        int? seed = JsonFields.Int(body, "seed", int.MinValue, int.MaxValue);
        int n = JsonFields.Int(body, "n", 1, 16) ?? 1;
        string[] stop = JsonFields.StringOrList(body, "stop", 4);
        bool stream = JsonFields.Bool(body, "stream") ?? false;
        bool ignoreEos = JsonFields.Bool(body, "ignore_eos") ?? false;
        bool includeUsage = false;
        if (JsonFields.Get(body, "stream_options") is { } so)
        {
            if (so.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest("'stream_options' must be an object", "stream_options");
            includeUsage = JsonFields.Bool(so, "include_usage") ?? false;
        }
        if (n > 1 && temperature == 0) { /* allowed: n identical greedy choices, as vLLM does */ }
        uint s = seed is { } v ? (uint)v : (uint)Random.Shared.NextInt64(0, uint.MaxValue);
        return new SamplingRequest(maxTokens, (float)temperature, (float)topP, topK <= 0 ? 0 : topK, s, n, stop,
            stream, includeUsage, ignoreEos, ParseLogitBias(body, vocabSize), GrammarOf(body),
            TopLogprobsOf(body, chat));
    }

    private static int? TopLogprobsOf(JsonElement body, bool chat)
    {
        if (!chat) return JsonFields.Int(body, "logprobs", 0, TokenLogprobs.MaxTop);
        bool on = JsonFields.Bool(body, "logprobs") ?? false;
        int? top = JsonFields.Int(body, "top_logprobs", 0, TokenLogprobs.MaxTop);
        if (top is > 0 && !on)
        {
            throw ApiException.BadRequest("'top_logprobs' needs 'logprobs': true", "top_logprobs");
        }
        return on ? top ?? 0 : null;
    }

    /// <summary>response_format json_object → the JSON object grammar, json_schema → the schema's grammar
    /// (<see cref="JsonSchemaGrammar"/>); text or none → none.</summary>
    private static string? GrammarOf(JsonElement body)
    {
        if (JsonFields.Get(body, "response_format") is not { } format) return null;
        if (format.ValueKind != JsonValueKind.Object)
            throw ApiException.BadRequest("'response_format' must be an object", "response_format");
        switch (JsonFields.String(format, "type"))
        {
            case "json_object":
                return JsonGrammar.Object;
            case "json_schema":
                return SchemaGrammar(format);
            case "text" or null:
                return null;
            case { } other:
                throw Errors.Unsupported("response_format", $"type '{other}' is not one of text, json_object, " +
                    "json_schema");
        }
    }

    private static string SchemaGrammar(JsonElement format)
    {
        if (JsonFields.Get(format, "json_schema") is not { ValueKind: JsonValueKind.Object } spec)
        {
            throw ApiException.BadRequest("'response_format.json_schema' must be an object with the schema",
                "response_format");
        }
        if (JsonFields.Get(spec, "schema") is not { } schema) return JsonGrammar.AnyValue;
        try
        {
            return JsonSchemaGrammar.From(schema);
        }
        catch (JsonSchemaUnsupportedException e)
        {
            throw Errors.Unsupported("response_format", $"this server's JSON schema grammar cannot hold it: " +
                e.Message);
        }
    }

    /// <summary>logit_bias: {"token id": bias in [−100, 100]}, ids within the vocabulary.</summary>
    private static List<TokenBias> ParseLogitBias(JsonElement body, int vocabSize)
    {
        var biases = new List<TokenBias>();
        if (JsonFields.Get(body, "logit_bias") is not { ValueKind: not JsonValueKind.Null } map) return biases;
        if (map.ValueKind != JsonValueKind.Object)
        {
            throw ApiException.BadRequest("'logit_bias' must be an object of token ids to biases", "logit_bias");
        }
        foreach (JsonProperty entry in map.EnumerateObject())
        {
            if (biases.Count == MaxLogitBias)
            {
                throw ApiException.BadRequest($"'logit_bias' holds at most {MaxLogitBias} tokens", "logit_bias");
            }
            if (!int.TryParse(entry.Name, NumberStyles.None, CultureInfo.InvariantCulture, out int token)
                || token >= vocabSize)
            {
                throw ApiException.BadRequest($"'logit_bias' key '{entry.Name}' is not a token id of this model " +
                    $"(0–{vocabSize - 1})", "logit_bias");
            }
            if (entry.Value.ValueKind != JsonValueKind.Number || entry.Value.GetDouble() is < -100 or > 100)
            {
                throw ApiException.BadRequest($"'logit_bias' for token {token} must be a number in [-100, 100]",
                    "logit_bias");
            }
            biases.Add(new TokenBias(token, (float)entry.Value.GetDouble()));
        }
        return biases;
    }

    /// <summary>The sampling of choice <paramref name="index"/> (prompt × n order): the seed advances per choice, so
    /// a seeded request's n choices differ from each other and repeat exactly.</summary>
    public SamplingSettings ForChoice(int index) =>
        new(Temperature, TopP, TopK, unchecked(Seed + (uint)index), IgnoreEos, LogitBias, Grammar, TopLogprobs);
}
