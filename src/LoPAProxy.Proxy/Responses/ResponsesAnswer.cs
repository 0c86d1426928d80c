using System.Security.Cryptography;
using System.Text.Json.Nodes;
using LoPAProxy.Proxy.Requests;

namespace LoPAProxy.Proxy.Responses;

/// <summary>
/// One bridged Responses request's answer: the chat completion (JSON) or its chunks (SSE) turned into a Responses
/// object or OpenAI's Responses event sequence — response.created, response.in_progress,
/// response.output_item.added, response.content_part.added, response.output_text.delta …, response.output_text.done,
/// response.content_part.done, response.output_item.done, response.completed (or response.failed) — with
/// consecutive sequence numbers. Usage is the backend's, as input_tokens / output_tokens (the soft prompt's rows are
/// input tokens, as for chat). Kept in the request's features by <see cref="ResponsesBridge"/>.
/// </summary>
public sealed class ResponsesAnswer
{
    private readonly JsonObject _request;
    private readonly string _id = "resp_" + RandomId(), _messageId = "msg_" + RandomId();
    private readonly long _createdAt = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    private readonly System.Text.StringBuilder _text = new();
    private long _sequence;
    private string? _finishReason;
    private JsonObject? _usage;
    private bool _started;

    /// <param name="request">The Responses body as the client sent it (its settings are echoed).</param>
    public ResponsesAnswer(JsonObject request) => _request = (JsonObject)request.DeepClone();

    /// <summary>The settings the bridged chat request went out with — an adapter's generation defaults may have
    /// filled temperature, top_p and max_tokens the client left unset — so the echo tells what was used.</summary>
    public void UseSettingsOf(JsonObject chat)
    {
        foreach (string name in new[] { "temperature", "top_p" })
        {
            if (_request[name] is null && chat[name] is { } value) _request[name] = value.DeepClone();
        }
        if (_request["max_output_tokens"] is null && chat["max_tokens"] is { } max)
        {
            _request["max_output_tokens"] = max.DeepClone();
        }
    }

    /// <summary>The Responses object for a whole chat completion.</summary>
    public JsonObject FromChat(JsonObject chat)
    {
        JsonNode? choice = JsonAccess.Field(chat, "choices") is JsonArray { Count: > 0 } choices ? choices[0] : null;
        _text.Append(JsonAccess.String(JsonAccess.Field(choice, "message"), "content") ?? "");
        _finishReason = JsonAccess.String(choice, "finish_reason");
        _usage = JsonAccess.Field(chat, "usage") as JsonObject;
        return Response(Completed(), [Item("completed")]);
    }

    /// <summary>The events for one chat chunk (the opening events before the first).</summary>
    public IEnumerable<JsonObject> OnChunk(JsonObject chunk)
    {
        var events = new List<JsonObject>(Start());
        if (chunk["usage"] is JsonObject usage) _usage = usage;
        if (JsonAccess.Field(chunk, "choices") is not JsonArray { Count: > 0 } choices) return events;
        JsonNode? choice = choices[0];
        _finishReason = JsonAccess.String(choice, "finish_reason") ?? _finishReason;
        string? delta = JsonAccess.String(JsonAccess.Field(choice, "delta"), "content");
        if (string.IsNullOrEmpty(delta)) return events;
        _text.Append(delta);
        events.Add(Event("response.output_text.delta", TextPart(), ("delta", delta), ("logprobs", new JsonArray())));
        return events;
    }

    /// <summary>The closing events, after the backend's stream ended.</summary>
    public IEnumerable<JsonObject> Finish()
    {
        var events = new List<JsonObject>(Start());
        string text = _text.ToString();
        events.Add(Event("response.output_text.done", TextPart(), ("text", text), ("logprobs", new JsonArray())));
        events.Add(Event("response.content_part.done", TextPart(), ("part", OutputText(text))));
        events.Add(Event("response.output_item.done", [("output_index", 0), ("item", Item("completed"))]));
        events.Add(Event("response.completed", [("response", Response(Completed(), [Item("completed")]))]));
        return events;
    }

    /// <summary>The event that ends a stream the backend broke off.</summary>
    public JsonObject Failed(string message) => Event("response.failed", [("response", Response("failed",
        [Item("incomplete")], new JsonObject { ["code"] = "server_error", ["message"] = message }))]);

    private IEnumerable<JsonObject> Start()
    {
        if (_started) yield break;
        _started = true;
        yield return Event("response.created", [("response", Response("in_progress", []))]);
        yield return Event("response.in_progress", [("response", Response("in_progress", []))]);
        yield return Event("response.output_item.added", [("output_index", 0), ("item", Item("in_progress"))]);
        yield return Event("response.content_part.added", TextPart(), ("part", OutputText("")));
    }

    /// <summary>"completed", or "incomplete" when the output hit max_output_tokens.</summary>
    private string Completed() => _finishReason == "length" ? "incomplete" : "completed";

    private JsonObject Response(string status, JsonNode[] output, JsonObject? error = null) => new()
    {
        ["id"] = _id, ["object"] = "response", ["created_at"] = _createdAt, ["status"] = status,
        ["error"] = error,
        ["incomplete_details"] = status == "incomplete" ? new JsonObject { ["reason"] = "max_output_tokens" } : null,
        ["instructions"] = _request["instructions"]?.DeepClone(),
        ["max_output_tokens"] = _request["max_output_tokens"]?.DeepClone(),
        ["model"] = _request["model"]?.DeepClone(),
        ["output"] = new JsonArray(output),
        ["parallel_tool_calls"] = false, ["previous_response_id"] = null, ["store"] = false,
        ["temperature"] = _request["temperature"]?.DeepClone() ?? 1, ["top_p"] = _request["top_p"]?.DeepClone() ?? 1,
        ["text"] = new JsonObject
        {
            ["format"] = _request["text"]?["format"]?.DeepClone() ?? new JsonObject { ["type"] = "text" },
        },
        ["tool_choice"] = "none", ["tools"] = new JsonArray(), ["truncation"] = "disabled",
        ["usage"] = status == "in_progress" ? null : Usage(),
        ["user"] = _request["user"]?.DeepClone(),
        ["metadata"] = _request["metadata"]?.DeepClone() ?? new JsonObject(),
    };

    private JsonObject? Usage()
    {
        if (_usage is null) return null;
        long input = (long?)_usage["prompt_tokens"] ?? 0, output = (long?)_usage["completion_tokens"] ?? 0;
        return new JsonObject
        {
            ["input_tokens"] = input, ["input_tokens_details"] = new JsonObject { ["cached_tokens"] = 0 },
            ["output_tokens"] = output, ["output_tokens_details"] = new JsonObject { ["reasoning_tokens"] = 0 },
            ["total_tokens"] = input + output,
        };
    }

    private JsonObject Item(string status) => new()
    {
        ["id"] = _messageId, ["type"] = "message", ["status"] = status, ["role"] = "assistant",
        ["content"] = status == "in_progress" ? new JsonArray() : new JsonArray(OutputText(_text.ToString())),
    };

    private static JsonObject OutputText(string text) => new()
    {
        ["type"] = "output_text", ["text"] = text, ["annotations"] = new JsonArray(),
    };

    /// <summary>The fields that place an event in the one message's one text part.</summary>
    private (string, JsonNode?)[] TextPart() => [("item_id", _messageId), ("output_index", 0), ("content_index", 0)];

    private JsonObject Event(string type, (string, JsonNode?)[] place, params (string, JsonNode?)[] fields)
    {
        var e = new JsonObject { ["type"] = type, ["sequence_number"] = _sequence++ };
        foreach (var (name, value) in place.Concat(fields)) e[name] = value;
        return e;
    }

    private static string RandomId() => Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
}
