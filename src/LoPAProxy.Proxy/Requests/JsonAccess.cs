using System.Text.Json.Nodes;

namespace LoPAProxy.Proxy.Requests;

/// <summary>
/// Reads client JSON without trusting its shape: JsonNode's indexer throws on a node of the wrong kind ("messages":
/// [5]), so every field access on request bodies goes through these, which answer null instead.
/// </summary>
public static class JsonAccess
{
    /// <summary>The field of an object, or null (a missing field, or a node that is not an object).</summary>
    public static JsonNode? Field(JsonNode? node, string name) => node is JsonObject o ? o[name] : null;

    /// <summary>The field as a string, or null.</summary>
    public static string? String(JsonNode? node, string name) =>
        Field(node, name) is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    /// <summary>True only when the field is the JSON literal true ("stream": "yes" is not a stream).</summary>
    public static bool Flag(JsonNode? node, string name) =>
        Field(node, name) is JsonValue v && v.TryGetValue(out bool on) && on;
}
