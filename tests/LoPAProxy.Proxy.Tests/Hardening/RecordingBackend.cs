using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.Proxy.Tests.Hardening;

/// <summary>One request as a backend received it.</summary>
public sealed record Received(string Method, string Path, Dictionary<string, string> Headers, string Body)
{
    public JsonElement Json => JsonDocument.Parse(Body).RootElement;
}

/// <summary>
/// A model-server stand-in on 127.0.0.1 that records every request it gets (method, path, headers, body) and answers
/// in OpenAI's shape — plain JSON, or an SSE stream when asked. With <c>dieMidStream</c> it sends two stream events
/// and then drops the connection, as a crashing model server would.
/// </summary>
public sealed class RecordingBackend : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly bool _dieMidStream;

    public ConcurrentQueue<Received> Requests { get; } = new();
    public string Url => _app.Urls.First();

    private RecordingBackend(bool dieMidStream)
    {
        _dieMidStream = dieMidStream;
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = 512L << 20);
        _app = builder.Build();
        _app.Run(AnswerAsync);
    }

    public static async Task<RecordingBackend> StartAsync(bool dieMidStream = false)
    {
        var backend = new RecordingBackend(dieMidStream);
        await backend._app.StartAsync();
        return backend;
    }

    public Received? Last => Requests.LastOrDefault();

    public void Clear() => Requests.Clear();

    /// <summary>While set, every request is recorded and then answered only once this completes.</summary>
    public TaskCompletionSource? Hold { get; set; }

    private async Task AnswerAsync(HttpContext http)
    {
        string body = await new StreamReader(http.Request.Body).ReadToEndAsync();
        var headers = http.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(),
            StringComparer.OrdinalIgnoreCase);
        Requests.Enqueue(new Received(http.Request.Method, http.Request.Path.Value ?? "", headers, body));
        if (Hold is { } hold) await hold.Task.WaitAsync(http.RequestAborted);
        bool stream = body.Contains("\"stream\":true", StringComparison.Ordinal);
        if (!stream && !_dieMidStream)
        {
            await http.Response.WriteAsJsonAsync(new
            {
                id = "chatcmpl-rec", @object = "chat.completion", created = 0, model = "stories260K",
                choices = new[] { new { index = 0, message = new { role = "assistant", content = "recorded" },
                    finish_reason = "stop" } },
            });
            return;
        }
        http.Response.ContentType = "text/event-stream";
        for (int i = 0; i < 2; i++)
        {
            string chunk = JsonSerializer.Serialize(new
            {
                id = "chatcmpl-rec", @object = "chat.completion.chunk", created = 0, model = "stories260K",
                choices = new[] { new { index = 0, delta = new { content = $"part{i} " },
                    finish_reason = (string?)null } },
            });
            await http.Response.WriteAsync($"data: {chunk}\n\n");
            await http.Response.Body.FlushAsync();
        }
        if (_dieMidStream)
        {
            await Task.Delay(50);
            http.Abort();
            return;
        }
        await http.Response.WriteAsync("data: [DONE]\n\n", Encoding.UTF8);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
