using System.Text.Json.Nodes;

namespace LoPAProxy.Proxy.Usage;

/// <summary>
/// One generation answer's usage as the backend reported it, read while the answer is relayed. For a stream whose
/// client did not ask for usage, the proxy asks the backend for it (stream_options.include_usage) and takes it out
/// again on the way back (<see cref="StripUsage"/>), so the client sees the stream it asked for.
/// </summary>
public sealed class AnswerMeter
{
    /// <summary>The proxy added stream_options.include_usage: the usage chunk is not the client's.</summary>
    public bool StripUsage { get; init; }
    /// <summary>The client asked for a usage chunk (honoured by the SGLang mapping too).</summary>
    public bool ClientAskedUsage { get; init; }
    public long? PromptTokens { get; set; }
    public long? CompletionTokens { get; set; }
    /// <summary>Stream events seen (a stand-in for completion tokens when a backend reports no usage).</summary>
    public long Events { get; set; }

    public bool HasUsage => PromptTokens is not null || CompletionTokens is not null;

    /// <summary>
    /// For a generation request about to be forwarded: decides whether to ask the backend for stream usage, and
    /// does so in the body.
    /// </summary>
    public static AnswerMeter ForRequest(JsonObject body, bool backendReportsStreamUsage)
    {
        bool stream = Requests.JsonAccess.Flag(body, "stream");
        JsonNode? options = body["stream_options"];
        bool asked = options is JsonObject o && o["include_usage"] is JsonValue v && v.TryGetValue(out bool yes)
            && yes;
        if (!stream || asked || !backendReportsStreamUsage || options is not (null or JsonObject))
            return new AnswerMeter { ClientAskedUsage = asked };
        JsonObject streamOptions = options as JsonObject ?? new JsonObject();
        streamOptions["include_usage"] = true;
        body["stream_options"] = streamOptions;
        return new AnswerMeter { StripUsage = true };
    }

    /// <summary>True when a stream event's text may carry usage (cheap test before parsing it).</summary>
    public static bool MayCarryUsage(string data) => data.Contains("\"usage\"", StringComparison.Ordinal);

    /// <summary>Takes usage from an answer or stream event; false when the event must not reach the client.</summary>
    public bool Observe(JsonObject answer)
    {
        if (answer["usage"] is JsonObject usage)
        {
            PromptTokens = Count(usage["prompt_tokens"]) ?? PromptTokens;
            CompletionTokens = Count(usage["completion_tokens"]) ?? CompletionTokens;
        }
        if (!StripUsage || !answer.ContainsKey("usage")) return true;
        answer.Remove("usage");
        return answer["choices"] is not JsonArray { Count: 0 };
    }

    private static long? Count(JsonNode? node) => node is JsonValue v && v.TryGetValue(out long n) ? n : null;
}
