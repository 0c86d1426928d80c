using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// A model server stand-in that answers every chat request at once with one fixed answer (usage included), after
/// reading the whole body: what the proxy costs, with the model's own time taken out.
/// </summary>
public static class InstantBackend
{
    private const string Answer = """
        {"id":"c","object":"chat.completion","created":1,"model":"m",
         "choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],
         "usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}}
        """;

    public static async Task<WebApplication> StartAsync()
    {
        WebApplicationBuilder b = WebApplication.CreateSlimBuilder();
        b.WebHost.UseUrls("http://127.0.0.1:0");
        b.Logging.ClearProviders();
        WebApplication app = b.Build();
        app.MapPost("/v1/chat/completions", async (HttpContext h) =>
        {
            await h.Request.Body.CopyToAsync(Stream.Null);
            h.Response.ContentType = "application/json";
            await h.Response.WriteAsync(Answer);
        });
        await app.StartAsync();
        return app;
    }
}
