using System.Text.Json;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.ModelServer.OpenAi;

namespace LoPAProxy.ModelServer.Endpoints;

/// <summary>The sampling and output fields completions and chat share, validated.</summary>
internal sealed record SamplingRequest(int? MaxTokens, float Temperature, float TopP, int TopK, ulong Seed, int N, string[] Stop, bool Stream, bool IncludeUsage)
{
    public static SamplingRequest Parse(JsonElement body, ModelServerOptions options, bool chat)
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
        bool includeUsage = false;
        if (JsonFields.Get(body, "stream_options") is { } so)
        {
            if (so.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest("'stream_options' must be an object", "stream_options");
            includeUsage = JsonFields.Bool(so, "include_usage") ?? false;
        }
        if (n > 1 && temperature == 0) { /* allowed: n identical greedy choices, as vLLM does */ }
        ulong s = seed is { } v ? (ulong)(uint)v + 1 : (ulong)Random.Shared.NextInt64(1, long.MaxValue);
        return new SamplingRequest(maxTokens, (float)temperature, (float)topP, topK <= 0 ? 0 : topK, s, n, stop, stream, includeUsage);
    }

    public Sampler NewSampler(int vocab) => new(vocab, Temperature, TopP, TopK, Seed);
}
