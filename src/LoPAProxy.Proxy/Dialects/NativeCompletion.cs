using System.Text.Json;
using System.Text.Json.Nodes;
using LoPAProxy.Proxy.Requests;
using LoPAProxy.Proxy.Usage;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Transforms;

namespace LoPAProxy.Proxy.Dialects;

/// <summary>
/// OpenAI's text_completion answer, written for a backend that answered in its own shape (SGLang's /generate,
/// Triton's generate): the whole answer, stream chunks, the usage chunk a client asked for, and the backend's
/// refusal as OpenAI error JSON with the backend's status. Usage goes to the request's <see cref="AnswerMeter"/>.
/// </summary>
public sealed class NativeCompletion(ResponseTransformContext context, string model)
{
    private readonly string _id = "cmpl-" + Guid.NewGuid().ToString("N");
    private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public HttpContext Http => context.HttpContext;
    public CancellationToken Aborted => Http.RequestAborted;
    public AnswerMeter Meter { get; } = context.HttpContext.Features.Get<AnswerMeter>() ?? new AnswerMeter();

    /// <summary>Takes the answer over from YARP; false (after writing OpenAI error JSON) when the backend
    /// refused.</summary>
    public async Task<bool> BeginAsync(string backendName, bool stream)
    {
        context.SuppressResponseBody = true;
        Http.Response.Headers.ContentLength = null;
        HttpResponseMessage upstream = context.ProxyResponse!;
        if (upstream.IsSuccessStatusCode)
        {
            Http.Response.ContentType = stream ? "text/event-stream" : "application/json";
            return true;
        }
        string text = await upstream.Content.ReadAsStringAsync(Aborted);
        await OpenAi.ApiException.WriteAsync(Http.Response, (int)upstream.StatusCode, $"{backendName}: {text}",
            "server_error", null, "backend_error");
        return false;
    }

    public Task<Stream> ReadUpstreamAsync() => context.ProxyResponse!.Content.ReadAsStreamAsync(Aborted);

    /// <summary>One choice of the whole answer.</summary>
    public static JsonObject Choice(int index, string text, string finish) => new()
    {
        ["index"] = index, ["text"] = text, ["logprobs"] = null, ["finish_reason"] = finish,
    };

    /// <summary>The whole answer, with usage (also recorded on the meter).</summary>
    public async Task WriteWholeAsync(JsonArray choices, long promptTokens, long completionTokens)
    {
        Meter.PromptTokens = promptTokens;
        Meter.CompletionTokens = completionTokens;
        JsonObject body = Envelope();
        body["choices"] = choices;
        body["usage"] = Usage(promptTokens, completionTokens);
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(body, JsonBodies.Outgoing);
        await Http.Response.Body.WriteAsync(bytes, Aborted);
    }

    /// <summary>One stream chunk carrying <paramref name="delta"/> of choice <paramref name="index"/>.</summary>
    public async Task WriteChunkAsync(int index, string delta, string? finish)
    {
        JsonObject chunk = Envelope();
        chunk["choices"] = new JsonArray(new JsonObject
        {
            ["index"] = index, ["text"] = delta, ["logprobs"] = null, ["finish_reason"] = finish,
        });
        await WriteEventAsync(chunk.ToJsonString(JsonBodies.Outgoing));
    }

    /// <summary>The stream's end: the usage chunk when the client asked for one (stream_options), then
    /// [DONE].</summary>
    public async Task EndStreamAsync()
    {
        if (Meter.ClientAskedUsage)
        {
            JsonObject chunk = Envelope();
            chunk["choices"] = new JsonArray();
            chunk["usage"] = Usage(Meter.PromptTokens ?? 0, Meter.CompletionTokens ?? 0);
            await WriteEventAsync(chunk.ToJsonString(JsonBodies.Outgoing));
        }
        await WriteEventAsync("[DONE]");
    }

    /// <summary>A failure the backend reported inside a stream that had begun: OpenAI's error event.</summary>
    public Task WriteStreamErrorAsync(string backendName, string message)
    {
        var error = new JsonObject
        {
            ["error"] = new JsonObject
            {
                ["message"] = $"{backendName}: {message}", ["type"] = "server_error", ["param"] = null,
                ["code"] = "backend_error",
            },
        };
        return WriteEventAsync(error.ToJsonString(JsonBodies.Outgoing));
    }

    private async Task WriteEventAsync(string data)
    {
        await Http.Response.WriteAsync("data: " + data + "\n\n", Aborted);
        await Http.Response.Body.FlushAsync(Aborted);
    }

    private JsonObject Envelope() => new()
    {
        ["id"] = _id, ["object"] = "text_completion", ["created"] = _created, ["model"] = model,
    };

    private static JsonObject Usage(long prompt, long completion) => new()
    {
        ["prompt_tokens"] = prompt, ["completion_tokens"] = completion, ["total_tokens"] = prompt + completion,
    };
}
