using System.Text.Json;
using LoPAProxy.OpenAi;

namespace LoPAProxy.ModelServer.Endpoints;

/// <summary>
/// OpenAI request features this server does not implement, in one table: each is refused with a 400
/// <c>unsupported</c> naming the field unless its value asks for nothing (an empty tool list, <c>tool_choice:
/// "none"</c>, a text response format, a zero penalty, …) — never accepted and ignored. A feature that comes to be
/// implemented leaves the table.
/// </summary>
internal static class FeaturePolicy
{
    private sealed record Feature(string Field, bool Chat, bool Completions, Func<JsonElement, bool> AsksForNothing,
        string Why);

    private static readonly Feature[] Unsupported =
    [
        new("tools", true, false, v => v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 0,
            "tool calls are not supported by this server"),
        new("tool_choice", true, false, v => v.ValueKind == JsonValueKind.String && v.GetString() == "none",
            "tool calls are not supported by this server"),
        new("functions", true, false, v => v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 0,
            "function calls are not supported by this server"),
        new("function_call", true, false, v => v.ValueKind == JsonValueKind.String && v.GetString() == "none",
            "function calls are not supported by this server"),
        new("presence_penalty", true, true, IsZero, "penalties are not supported by this server"),
        new("frequency_penalty", true, true, IsZero, "penalties are not supported by this server"),
        new("repetition_penalty", true, true, v => v.ValueKind == JsonValueKind.Number && v.GetDouble() == 1,
            "penalties are not supported by this server"),
        new("modalities", true, false, v => v.ValueKind == JsonValueKind.Array && v.EnumerateArray()
            .All(m => m.ValueKind == JsonValueKind.String && m.GetString() == "text"), "only text output is served"),
        new("audio", true, false, _ => false, "audio output is not served"),
        new("reasoning_effort", true, false, _ => false, "the served model does not reason"),
        new("prediction", true, false, _ => false, "predicted outputs are not supported by this server"),
        new("web_search_options", true, false, _ => false, "web search is not available here"),
        new("store", true, false, v => v.ValueKind == JsonValueKind.False, "completions are not stored here"),
        new("suffix", false, true, v => v.ValueKind == JsonValueKind.String && v.GetString()!.Length == 0,
            "suffix (insertion) is not supported by this server"),
        new("best_of", false, true, v => v.ValueKind == JsonValueKind.Number && v.GetDouble() <= 1,
            "best_of is not supported by this server"),
    ];

    /// <summary>Refuses the first feature the body asks for that this server does not implement.</summary>
    public static void Check(JsonElement body, bool chat)
    {
        foreach (Feature f in Unsupported)
        {
            if ((chat ? !f.Chat : !f.Completions) || JsonFields.Get(body, f.Field) is not { } value) continue;
            if (value.ValueKind == JsonValueKind.Null || f.AsksForNothing(value)) continue;
            throw Errors.Unsupported(f.Field, f.Why);
        }
    }

    private static bool IsZero(JsonElement v) => v.ValueKind == JsonValueKind.Number && v.GetDouble() == 0;
}
