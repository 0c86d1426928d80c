using System.Text.Json;
using LoPAProxy.ModelServer.Generation;

namespace LoPAProxy.ModelServer.Endpoints;

/// <summary>
/// Writes sampled tokens' logprobs in OpenAI's two shapes: chat's <c>{"content": [{token, logprob, bytes,
/// top_logprobs}]}</c> and the legacy completions' parallel lists <c>{tokens, token_logprobs, top_logprobs,
/// text_offset}</c>, tokens named by <see cref="ServedModel.TokenText"/>.
/// </summary>
internal static class LogprobsJson
{
    public static void WriteChat(Utf8JsonWriter j, ServedModel model, IReadOnlyList<SampledToken> tokens)
    {
        j.WriteStartObject("logprobs");
        j.WriteStartArray("content");
        foreach (SampledToken t in tokens)
        {
            j.WriteStartObject();
            ChatEntry(j, model, t.Token, t.Logprob);
            j.WriteStartArray("top_logprobs");
            foreach (TokenLogprob alternative in t.Top!)
            {
                j.WriteStartObject();
                ChatEntry(j, model, alternative.Token, alternative.Logprob);
                j.WriteEndObject();
            }
            j.WriteEndArray();
            j.WriteEndObject();
        }
        j.WriteEndArray();
        j.WriteNull("refusal");
        j.WriteEndObject();
    }

    /// <summary>The completions shape; <paramref name="offset"/> is where the first token's text starts in the
    /// choice's text.</summary>
    public static void WriteCompletion(Utf8JsonWriter j, ServedModel model, IReadOnlyList<SampledToken> tokens,
        int offset)
    {
        j.WriteStartObject("logprobs");
        j.WriteStartArray("tokens");
        foreach (SampledToken t in tokens) j.WriteStringValue(model.TokenText(t.Token));
        j.WriteEndArray();
        j.WriteStartArray("token_logprobs");
        foreach (SampledToken t in tokens) j.WriteNumberValue(t.Logprob);
        j.WriteEndArray();
        j.WriteStartArray("top_logprobs");
        foreach (SampledToken t in tokens) TopMap(j, model, t.Top!);
        j.WriteEndArray();
        j.WriteStartArray("text_offset");
        foreach (SampledToken t in tokens)
        {
            j.WriteNumberValue(offset);
            offset += model.TokenText(t.Token).Length;
        }
        j.WriteEndArray();
        j.WriteEndObject();
    }

    private static void ChatEntry(Utf8JsonWriter j, ServedModel model, int token, float logprob)
    {
        j.WriteString("token", model.TokenText(token));
        j.WriteNumber("logprob", logprob);
        j.WriteStartArray("bytes");
        foreach (byte b in model.TokenBytes(token)) j.WriteNumberValue(b);
        j.WriteEndArray();
    }

    /// <summary>{token: logprob} of the alternatives; the first of two tokens with the same text wins.</summary>
    private static void TopMap(Utf8JsonWriter j, ServedModel model, TokenLogprob[] top)
    {
        j.WriteStartObject();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (TokenLogprob alternative in top)
        {
            string text = model.TokenText(alternative.Token);
            if (seen.Add(text)) j.WriteNumber(text, alternative.Logprob);
        }
        j.WriteEndObject();
    }
}
