using System.Text;
using System.Text.Json.Nodes;
using LoPAProxy.Proxy.Pipeline;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Transforms;

namespace LoPAProxy.Proxy.Dialects;

/// <summary>The model name the client asked for ("base:adapter"), when the rewrite replaced it with the
/// backend's.</summary>
public sealed record ClientModel(string Name);

/// <summary>
/// Answers carry the model the client asked for, as OpenAI's API does: the backend names its own base model, so
/// "model" is put back to "base:adapter" in a JSON answer and in every event of a stream — event by event, never
/// buffering the stream. Error answers pass through as they are. Should the backend fail while the stream is being
/// copied here, the stream ends with an OpenAI error event (as StreamFailureGuard does for YARP's own copy).
/// </summary>
public static class ModelEcho
{
    private const long MaxJsonAnswerBytes = 64L << 20;

    public static async ValueTask TransformAsync(ResponseTransformContext context)
    {
        HttpContext http = context.HttpContext;
        if (http.Features.Get<ClientModel>() is not { } client || context.ProxyResponse is null) return;
        if (http.Features.Get<SglangRequest>() is not null || !context.ProxyResponse.IsSuccessStatusCode) return;
        string? type = context.ProxyResponse.Content.Headers.ContentType?.MediaType;
        if (type is not ("application/json" or "text/event-stream")) return;
        context.SuppressResponseBody = true;
        http.Response.Headers.ContentLength = null;
        Stream upstream = await context.ProxyResponse.Content.ReadAsStreamAsync(http.RequestAborted);
        if (type == "application/json") await EchoJsonAsync(upstream, http.Response, client.Name, http.RequestAborted);
        else await EchoStreamAsync(upstream, http.Response, client.Name, http.RequestAborted);
    }

    private static async Task EchoJsonAsync(Stream upstream, HttpResponse response, string model,
        CancellationToken cancel)
    {
        var buffer = new MemoryStream();
        await upstream.CopyToAsync(buffer, cancel);
        if (buffer.Length > MaxJsonAnswerBytes) throw new InvalidDataException("the model server's answer is too large");
        byte[] bytes = buffer.ToArray();
        await response.Body.WriteAsync(WithModel(bytes, model) ?? bytes, cancel);
    }

    private static async Task EchoStreamAsync(Stream upstream, HttpResponse response, string model,
        CancellationToken cancel)
    {
        using var reader = new StreamReader(upstream, Encoding.UTF8);
        try
        {
            while (await reader.ReadLineAsync(cancel) is { } line)
            {
                string output = line.StartsWith("data:", StringComparison.Ordinal) ? EventWithModel(line, model) : line;
                await response.WriteAsync(output + "\n", cancel);
                if (line.Length == 0) await response.Body.FlushAsync(cancel);
            }
            await response.Body.FlushAsync(cancel);
        }
        catch (Exception e) when (e is IOException or HttpRequestException && !cancel.IsCancellationRequested)
        {
            const string Failure = "the model server failed in the middle of the stream";
            await StreamFailureGuard.WriteErrorEventAsync(response, Failure, cancel);
        }
    }

    private static string EventWithModel(string line, string model)
    {
        string data = line[5..].TrimStart();
        if (data.Length == 0 || data[0] != '{') return line; // [DONE] and anything else pass as they are
        byte[]? rewritten = WithModel(Encoding.UTF8.GetBytes(data), model);
        return rewritten is null ? line : "data: " + Encoding.UTF8.GetString(rewritten);
    }

    /// <summary>The JSON object with "model" set, or null when it is not an object carrying "model".</summary>
    private static byte[]? WithModel(byte[] json, string model)
    {
        try
        {
            if (JsonNode.Parse(json) is not JsonObject o || !o.ContainsKey("model")) return null;
            o["model"] = model;
            return Encoding.UTF8.GetBytes(o.ToJsonString());
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }
}
