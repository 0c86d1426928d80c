using System.Text;
using System.Text.Json.Nodes;
using LoPAProxy.Proxy.Dialects;
using LoPAProxy.Proxy.Requests;
using LoPAProxy.Proxy.Usage;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Transforms;

namespace LoPAProxy.Proxy.Pipeline;

/// <summary>
/// Relays a generation answer, JSON or event stream — event by event, never buffering a stream — so that the
/// proxy can (1) put "model" back to the "base:adapter" the client asked for, as OpenAI's API names the model asked
/// for, and (2) read the backend's usage (<see cref="AnswerMeter"/>), taking out a usage chunk the client did not
/// ask for. Events that need neither pass through unparsed. Error answers pass through as they are. Should the
/// backend fail while the stream is being copied here, the stream ends with an OpenAI error event (as
/// StreamFailureGuard does for YARP's own copy).
/// </summary>
public static class AnswerRelay
{
    private const long MaxJsonAnswerBytes = 64L << 20;
    private const string StreamFailure = "the model server failed in the middle of the stream";

    public static async ValueTask TransformAsync(ResponseTransformContext context)
    {
        HttpContext http = context.HttpContext;
        string? model = http.Features.Get<ClientModel>()?.Name;
        AnswerMeter? meter = http.Features.Get<AnswerMeter>();
        if ((model is null && meter is null) || context.ProxyResponse is null) return;
        if (http.Features.Get<IDialectAnswer>() is not null || !context.ProxyResponse.IsSuccessStatusCode) return;
        string? type = context.ProxyResponse.Content.Headers.ContentType?.MediaType;
        if (type is not ("application/json" or "text/event-stream")) return;
        context.SuppressResponseBody = true;
        http.Response.Headers.ContentLength = null;
        Stream upstream = await context.ProxyResponse.Content.ReadAsStreamAsync(http.RequestAborted);
        var edit = new AnswerEdit(model, meter, http.Features.Get<Responses.ResponsesAnswer>());
        if (type == "application/json")
        {
            await RelayJsonAsync(upstream, http.Response, edit, http.RequestAborted);
        }
        else if (edit.Responses is not null)
        {
            await RelayResponsesStreamAsync(upstream, http.Response, edit, http.RequestAborted);
        }
        else
        {
            await RelayStreamAsync(upstream, http.Response, edit, http.RequestAborted);
        }
    }

    /// <summary>
    /// A chat stream relayed as the Responses events of a bridged /v1/responses request (event: and data: lines);
    /// the backend's usage, which the bridge always asks for, goes into response.completed.
    /// </summary>
    private static async Task RelayResponsesStreamAsync(Stream upstream, HttpResponse response, AnswerEdit edit,
        CancellationToken cancel)
    {
        Responses.ResponsesAnswer answer = edit.Responses!;
        using var reader = new StreamReader(upstream, Encoding.UTF8);
        try
        {
            while (await reader.ReadLineAsync(cancel) is { } line)
            {
                if (!line.StartsWith("data:", StringComparison.Ordinal)) continue;
                string data = line[5..].Trim();
                if (data == "[DONE]") break;
                if (edit.Chunk(data) is not { } chunk) continue;
                await WriteEventsAsync(response, answer.OnChunk(chunk), cancel);
            }
            await WriteEventsAsync(response, answer.Finish(), cancel);
        }
        catch (Exception e) when (e is IOException or HttpRequestException && !cancel.IsCancellationRequested)
        {
            await WriteEventsAsync(response, [answer.Failed(StreamFailure)], cancel);
        }
    }

    private static async Task WriteEventsAsync(HttpResponse response, IEnumerable<JsonObject> events,
        CancellationToken cancel)
    {
        var text = new StringBuilder();
        foreach (JsonObject e in events)
        {
            text.Append("event: ").Append((string?)e["type"]).Append("\ndata: ")
                .Append(e.ToJsonString(JsonBodies.Outgoing)).Append("\n\n");
        }

        if (text.Length == 0) return;
        await response.WriteAsync(text.ToString(), cancel);
        await response.Body.FlushAsync(cancel);
    }

    private static async Task RelayJsonAsync(Stream upstream, HttpResponse response, AnswerEdit edit,
        CancellationToken cancel)
    {
        var buffer = new MemoryStream();
        await upstream.CopyToAsync(buffer, cancel);
        if (buffer.Length > MaxJsonAnswerBytes)
            throw new InvalidDataException("the model server's answer is too large");
        byte[] bytes = buffer.ToArray();
        await response.Body.WriteAsync(edit.Json(bytes) ?? bytes, cancel);
    }

    private static async Task RelayStreamAsync(Stream upstream, HttpResponse response, AnswerEdit edit,
        CancellationToken cancel)
    {
        using var reader = new StreamReader(upstream, Encoding.UTF8);
        bool dropping = false;
        try
        {
            while (await reader.ReadLineAsync(cancel) is { } line)
            {
                if (line.Length == 0 && dropping)
                {
                    dropping = false; // the dropped event's blank line goes with it
                    continue;
                }
                string? output = line.StartsWith("data:", StringComparison.Ordinal) ? edit.Event(line) : line;
                if (output is null)
                {
                    dropping = true;
                    continue;
                }
                await response.WriteAsync(output + "\n", cancel);
                if (line.Length == 0) await response.Body.FlushAsync(cancel);
            }
            await response.Body.FlushAsync(cancel);
        }
        catch (Exception e) when (e is IOException or HttpRequestException && !cancel.IsCancellationRequested)
        {
            await StreamFailureGuard.WriteErrorEventAsync(response, StreamFailure, cancel);
        }
    }

    /// <summary>The edits one answer gets: the client's model name, the usage meter, and — for a bridged
    /// /v1/responses request — the Responses shape.</summary>
    private sealed class AnswerEdit(string? model, AnswerMeter? meter, Responses.ResponsesAnswer? responses)
    {
        public Responses.ResponsesAnswer? Responses => responses;

        /// <summary>The answer with its edits, or null to send it as it came.</summary>
        public byte[]? Json(byte[] json)
        {
            if (Parse(json) is not JsonObject o) return null;
            meter?.Observe(o);
            if (responses is not null) o = responses.FromChat(o);
            else if (model is not null && o.ContainsKey("model")) o["model"] = model;
            return Encoding.UTF8.GetBytes(o.ToJsonString(JsonBodies.Outgoing));
        }

        /// <summary>A stream event's JSON, metered (null when it is not a JSON object).</summary>
        public JsonObject? Chunk(string data)
        {
            if (data.Length == 0 || data[0] != '{' || Parse(Encoding.UTF8.GetBytes(data)) is not JsonObject o)
                return null;
            if (meter is not null)
            {
                meter.Events++;
                meter.Observe(o);
            }
            return o;
        }

        /// <summary>A "data:" line with its edits, or null when the event is to be dropped.</summary>
        public string? Event(string line)
        {
            string data = line[5..].TrimStart();
            if (data.Length == 0 || data[0] != '{') return line; // [DONE] and anything else pass as they are
            if (meter is not null) meter.Events++;
            bool usage = meter is not null && AnswerMeter.MayCarryUsage(data);
            if (model is null && !usage) return line;
            if (Parse(Encoding.UTF8.GetBytes(data)) is not JsonObject o) return line;
            if (meter is not null && !meter.Observe(o)) return null;
            if (model is not null && o.ContainsKey("model")) o["model"] = model;
            return "data: " + o.ToJsonString(JsonBodies.Outgoing);
        }

        private static JsonNode? Parse(byte[] json)
        {
            try
            {
                return JsonNode.Parse(json, documentOptions: JsonBodies.Strict);
            }
            catch (System.Text.Json.JsonException)
            {
                return null;
            }
        }
    }
}
