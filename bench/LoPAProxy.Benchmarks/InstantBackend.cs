using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// A model server stand-in that answers at once with one fixed answer (usage included), after reading the whole body:
/// what the proxy costs, with the model's own time taken out. Chat and completions in vLLM's shape, /generate in
/// SGLang's; GET /received gives the request-body bytes read so far (what a proxy forwarded). `dotnet
/// LoPAProxy.Benchmarks.dll instant-backend PORT` runs it as a process of its own, so its CPU is not counted as the
/// caller's.
/// </summary>
public static class InstantBackend
{
    private const string ChatAnswer = """
        {"id":"c","object":"chat.completion","created":1,"model":"m",
         "choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],
         "usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}}
        """;

    private const string CompletionAnswer = """
        {"id":"c","object":"text_completion","created":1,"model":"m",
         "choices":[{"index":0,"text":"ok","logprobs":null,"finish_reason":"stop"}],
         "usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}}
        """;

    private const string SglangAnswer = """
        {"text":"ok","meta_info":{"prompt_tokens":12,"completion_tokens":1,"finish_reason":{"type":"stop"}}}
        """;

    private static long s_received;

    public static async Task<WebApplication> StartAsync(string url = "http://127.0.0.1:0")
    {
        WebApplicationBuilder b = WebApplication.CreateSlimBuilder();
        b.WebHost.UseUrls(url);
        b.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = null);
        b.Logging.ClearProviders();
        WebApplication app = b.Build();
        app.MapPost("/v1/chat/completions", h => DrainAndAnswer(h, ChatAnswer));
        app.MapPost("/v1/completions", h => DrainAndAnswer(h, CompletionAnswer));
        app.MapPost("/generate", h => DrainAndAnswer(h, SglangAnswer));
        app.MapGet("/received", () => Interlocked.Read(ref s_received).ToString(CultureInfo.InvariantCulture));
        await app.StartAsync();
        return app;
    }

    /// <summary>Serves on 127.0.0.1:<paramref name="port"/> until the process is stopped.</summary>
    public static async Task<int> Serve(int port)
    {
        WebApplication app = await StartAsync($"http://127.0.0.1:{port}");
        await app.WaitForShutdownAsync();
        return 0;
    }

    private static async Task DrainAndAnswer(HttpContext h, string answer)
    {
        var buffer = new byte[81920];
        long read = 0;
        for (int n; (n = await h.Request.Body.ReadAsync(buffer)) > 0;) read += n;
        Interlocked.Add(ref s_received, read);
        h.Response.ContentType = "application/json";
        await h.Response.WriteAsync(answer);
    }
}
