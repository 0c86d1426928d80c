using System.Text.Json.Nodes;

namespace LoPAProxy.Proxy.Requests;

/// <summary>The text of a chat message: its string content, or its "text" parts joined by newlines.</summary>
public static class MessageText
{
    public static string Of(JsonNode? message) => JsonAccess.Field(message, "content") switch
    {
        JsonValue v when v.TryGetValue(out string? s) => s,
        JsonArray parts => string.Join("\n", parts.Where(IsText).Select(p => TextOfPart(p!))),
        _ => "",
    };

    /// <summary>
    /// A conversation's text as a plain chat template renders it — the messages' texts joined by newlines (what the
    /// reference server's "plain" template sends a base model) — for measuring prompts in tokens.
    /// </summary>
    public static string OfConversation(JsonArray messages) => string.Join("\n", messages.Select(Of));

    public static bool IsText(JsonNode? part) => TypeOf(part) == "text";

    /// <summary>A content part's "type", or null when it has none (or it is not a string).</summary>
    public static string? TypeOf(JsonNode? part) => JsonAccess.String(part, "type");

    private static string TextOfPart(JsonNode part) => JsonAccess.String(part, "text") ?? "";
}
