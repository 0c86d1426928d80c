using System.Text.Json.Nodes;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Requests;

namespace LoPAProxy.Proxy.Responses;

/// <summary>
/// A Responses API request (POST /v1/responses) as the chat completions request it is bridged onto. What the bridge
/// carries: <c>model</c>, <c>input</c> (a string, or message items with text content), <c>instructions</c> (a system
/// message first), <c>max_output_tokens</c>, <c>temperature</c>, <c>top_p</c>, <c>stream</c>, <c>user</c>,
/// <c>metadata</c> (echoed), <c>store: false</c>, <c>text.format</c> (text, json_object, or json_schema as chat's
/// <c>response_format</c>: the backend enforces it or refuses it), <c>truncation: "disabled"</c>.
/// Everything else is refused with a 400 naming the field — never accepted and ignored: stored responses
/// (<c>previous_response_id</c>, <c>store: true</c>), tools, reasoning, other input types.
/// </summary>
public static class ResponsesRequest
{
    private static readonly HashSet<string> Carried = new(StringComparer.Ordinal)
    {
        "model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "stream", "user", "metadata",
        "store", "text", "truncation",
    };

    /// <summary>The chat completions body for this Responses body (which is left as it was).</summary>
    /// <exception cref="ApiException">400 for what the bridge does not carry, naming the field.</exception>
    public static JsonObject ToChat(JsonObject body)
    {
        foreach (var (name, value) in body)
        {
            if (value is null) continue;
            if (!Carried.Contains(name)) throw Unsupported(name, Why(name));
        }
        RequireOptions(body);
        var messages = new JsonArray();
        if (JsonAccess.String(body, "instructions") is { Length: > 0 } instructions)
            messages.Add(new JsonObject { ["role"] = "system", ["content"] = instructions });
        AddInput(body["input"], messages);
        var chat = new JsonObject { ["model"] = body["model"]?.DeepClone(), ["messages"] = messages };
        if (body["max_output_tokens"] is { } max) chat["max_tokens"] = max.DeepClone();
        if (ResponseFormat(body) is { } format) chat["response_format"] = format;
        foreach (string name in new[] { "temperature", "top_p", "user" })
            if (body[name] is { } value) chat[name] = value.DeepClone();
        if (IsStream(body))
        {
            chat["stream"] = true;
            chat["stream_options"] = new JsonObject { ["include_usage"] = true }; // response.completed needs it
        }
        return chat;
    }

    public static bool IsStream(JsonObject body) => JsonAccess.Flag(body, "stream");

    private static string Why(string name) => name switch
    {
        "previous_response_id" or "conversation" => "stored responses and conversations are not kept here; send " +
            "the whole conversation as input",
        "tools" or "tool_choice" or "parallel_tool_calls" => "tool calls are not bridged onto chat backends here",
        "reasoning" => "reasoning settings are not supported by the served models",
        "include" => "no extra output (logprobs, sources) is produced here",
        "background" => "background responses are not kept here",
        _ => "the Responses bridge does not carry it",
    };

    private static void RequireOptions(JsonObject body)
    {
        if (body["store"] is JsonValue store && (!store.TryGetValue(out bool stored) || stored))
            throw Unsupported("store", "responses are not stored here (send store: false or leave it out)");
        if (body["truncation"] is JsonValue truncation && JsonAccess.String(body, "truncation") != "disabled")
            throw Unsupported("truncation", $"only \"disabled\" is supported, not {truncation.ToJsonString()}");
        if (body["metadata"] is not (null or JsonObject))
            throw ApiException.BadRequest("'metadata' must be an object of strings", "metadata");
    }

    /// <summary>text.format as chat's response_format: json_object as is; json_schema's name, schema, strict and
    /// description moved into response_format.json_schema; text or none → none.</summary>
    private static JsonObject? ResponseFormat(JsonObject body)
    {
        if (body["text"] is not JsonObject text || text["format"] is not JsonObject format) return null;
        switch (JsonAccess.String(format, "type"))
        {
            case "text":
                return null;
            case "json_object":
                return new JsonObject { ["type"] = "json_object" };
            case "json_schema":
                var schema = new JsonObject();
                foreach (string name in new[] { "name", "schema", "strict", "description" })
                    if (format[name] is { } value) schema[name] = value.DeepClone();
                return new JsonObject { ["type"] = "json_schema", ["json_schema"] = schema };
            case var other:
                throw Unsupported("text.format", $"format type '{other}' is not text, json_object or json_schema");
        }
    }

    private static void AddInput(JsonNode? input, JsonArray messages)
    {
        switch (input)
        {
            case JsonValue value when value.TryGetValue(out string? text):
                messages.Add(new JsonObject { ["role"] = "user", ["content"] = text });
                return;
            case JsonArray items when items.Count > 0:
                foreach (JsonNode? item in items) messages.Add(Message(item));
                return;
            default:
                throw ApiException.BadRequest("'input' must be a string or a non-empty list of message items",
                    "input");
        }
    }

    /// <summary>A message item ({"role", "content"}, type "message" or none) as a chat message of text.</summary>
    private static JsonObject Message(JsonNode? item)
    {
        if (item is not JsonObject o || JsonAccess.String(o, "type") is not (null or "message"))
            throw Unsupported("input", "only message items are bridged (no function calls, files or images)");
        string role = JsonAccess.String(o, "role") switch
        {
            "user" => "user",
            "assistant" => "assistant",
            "system" or "developer" => "system",
            var other => throw ApiException.BadRequest($"input message role '{other}' is not user, assistant, system " +
                "or developer", "input"),
        };
        return new JsonObject { ["role"] = role, ["content"] = Text(o["content"]) };
    }

    private static string Text(JsonNode? content)
    {
        if (content is JsonValue value && value.TryGetValue(out string? text)) return text;
        if (content is not JsonArray parts)
            throw ApiException.BadRequest("input message content must be a string or a list of text parts", "input");
        var joined = new System.Text.StringBuilder();
        foreach (JsonNode? part in parts)
        {
            string? type = JsonAccess.String(part, "type");
            if (type is not ("input_text" or "output_text" or "text") || JsonAccess.String(part, "text") is not { } t)
                throw Unsupported("input", $"content parts of type '{type}' are not bridged (text only)");
            joined.Append(t);
        }
        return joined.ToString();
    }

    private static ApiException Unsupported(string field, string why) => Errors.Unsupported(field, why);
}
