using System.Text.Json;
using LoPAProxy.ModelServer.Generation;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.ModelServer.Endpoints;

/// <summary>Writes OpenAI-shaped JSON bodies and Server-Sent Events.</summary>
internal static class OpenAiResponses
{
    public static long Now() => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public static void Usage(Utf8JsonWriter j, int prompt, int completion)
    {
        j.WriteStartObject("usage");
        j.WriteNumber("prompt_tokens", prompt);
        j.WriteNumber("completion_tokens", completion);
        j.WriteNumber("total_tokens", prompt + completion);
        j.WriteEndObject();
    }

    public static string FinishName(FinishReason r) => r == FinishReason.Stop ? "stop" : "length";

    public static async Task WriteJsonAsync(HttpResponse response, Action<Utf8JsonWriter> body)
    {
        response.ContentType = "application/json";
        var buffer = new MemoryStream();
        using (var j = new Utf8JsonWriter(buffer)) body(j);
        await response.Body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
    }

    public static void StartEventStream(HttpResponse response)
    {
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
    }

    /// <summary>One "data: {json}\n\n" event, flushed at once.</summary>
    public static async Task WriteEventAsync(HttpResponse response, Action<Utf8JsonWriter> body, CancellationToken cancel)
    {
        var buffer = new MemoryStream();
        buffer.Write("data: "u8);
        using (var j = new Utf8JsonWriter(buffer)) body(j);
        buffer.Write("\n\n"u8);
        await response.Body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), cancel);
        await response.Body.FlushAsync(cancel);
    }

    public static async Task WriteDoneAsync(HttpResponse response, CancellationToken cancel)
    {
        await response.Body.WriteAsync("data: [DONE]\n\n"u8.ToArray(), cancel);
        await response.Body.FlushAsync(cancel);
    }
}
