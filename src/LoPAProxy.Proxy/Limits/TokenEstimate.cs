using System.Text;
using System.Text.Json.Nodes;
using LoPAProxy.Proxy.Requests;

namespace LoPAProxy.Proxy.Limits;

/// <summary>Tokens reserved for a request: its prompt (soft-prompt rows included) and its completions.</summary>
public readonly record struct TokenReservation(long Prompt, long Completion)
{
    public long Total => Prompt + Completion;
}

/// <summary>
/// The tokens a generation request may use, reserved when it is admitted (its backend-reported usage replaces the
/// figure afterwards): prompt tokens (counted by the backend model's tokenizer where the proxy has it, else one per
/// 4 UTF-8 bytes, as OpenAI estimates), the soft prompt's m rows per prompt, and n × max_tokens completions per
/// prompt (LoPA:RateLimits:CompletionTokensWhenUnset when max_tokens is not set).
/// </summary>
public static class TokenEstimate
{
    public static TokenReservation Chat(JsonObject body, int? measuredPromptTokens, int softPromptRows,
        int completionWhenUnset)
    {
        long prompt = measuredPromptTokens ?? OfText(MessagesText(body));
        return new(prompt + softPromptRows, Completion(body, completionWhenUnset));
    }

    public static TokenReservation Completions(JsonObject body, IReadOnlyList<CompletionPrompt> prompts,
        int softPromptRows, int completionWhenUnset)
    {
        long prompt = prompts.Sum(p => p.Ids?.Length ?? OfText(p.Text ?? ""));
        int count = Math.Max(1, prompts.Count);
        return new(prompt + (long)softPromptRows * count, count * Completion(body, completionWhenUnset));
    }

    /// <summary>One token per 4 UTF-8 bytes, rounded up.</summary>
    public static long OfText(string text) => (Encoding.UTF8.GetByteCount(text) + 3) / 4;

    /// <summary>
    /// The completion tokens a request may generate per choice: the larger of max_tokens and max_completion_tokens.
    /// Backends honour different ones (vLLM's completions API knows only max_tokens; chat APIs prefer
    /// max_completion_tokens), so the proxy reserves and checks the context against the larger — never less than
    /// the backend will generate. Null when neither is set.
    /// </summary>
    public static long? MaxCompletionTokens(JsonObject body)
    {
        long? legacy = Positive(body["max_tokens"]), current = Positive(body["max_completion_tokens"]);
        return legacy is null ? current : current is null ? legacy : Math.Max(legacy.Value, current.Value);
    }

    private static long Completion(JsonObject body, int whenUnset)
    {
        long maxTokens = MaxCompletionTokens(body) ?? whenUnset;
        long n = Positive(body["n"]) ?? 1;
        return n * maxTokens;
    }

    private static long? Positive(JsonNode? node) =>
        node is JsonValue v && v.TryGetValue(out long value) && value > 0 ? value : null;

    private static string MessagesText(JsonObject body) =>
        body["messages"] is JsonArray messages ? MessageText.OfConversation(messages) : "";
}
