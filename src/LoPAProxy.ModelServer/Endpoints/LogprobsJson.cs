using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using LoPAProxy.ModelServer.Generation;

namespace LoPAProxy.ModelServer.Endpoints;

/// <summary>
/// Writes sampled tokens' logprobs in OpenAI's two shapes: chat's <c>{"content": [{token, logprob, bytes,
/// top_logprobs}]}</c> and the legacy completions' parallel lists <c>{tokens, token_logprobs, top_logprobs,
/// text_offset}</c>. A token is the text of its own bytes, or, when they are not whole UTF-8 characters (a
/// SentencePiece byte token), <c>bytes:\xNN…</c> as OpenAI writes it.
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
        foreach (SampledToken t in tokens) j.WriteStringValue(TokenText(model.TokenBytes(t.Token)));
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
            offset += TokenText(model.TokenBytes(t.Token)).Length;
        }
        j.WriteEndArray();
        j.WriteEndObject();
    }

    private static void ChatEntry(Utf8JsonWriter j, ServedModel model, int token, float logprob)
    {
        byte[] bytes = model.TokenBytes(token);
        j.WriteString("token", TokenText(bytes));
        j.WriteNumber("logprob", logprob);
        j.WriteStartArray("bytes");
        foreach (byte b in bytes) j.WriteNumberValue(b);
        j.WriteEndArray();
    }

    /// <summary>{token: logprob} of the alternatives; the first of two tokens with the same text wins.</summary>
    private static void TopMap(Utf8JsonWriter j, ServedModel model, TokenLogprob[] top)
    {
        j.WriteStartObject();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (TokenLogprob alternative in top)
        {
            string text = TokenText(model.TokenBytes(alternative.Token));
            if (seen.Add(text)) j.WriteNumber(text, alternative.Logprob);
        }
        j.WriteEndObject();
    }

    public static string TokenText(byte[] bytes) => Utf8.IsValid(bytes)
        ? Encoding.UTF8.GetString(bytes)
        : "bytes:" + string.Concat(bytes.Select(b => $"\\x{b:x2}"));
}
