using LoPAProxy.ModelServer.Endpoints;
using LoPAProxy.ModelServer.Generation;
using LoPAProxy.ModelServer.OpenAi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LoPAProxy.ModelServer;

/// <summary>Hosting: AddModelServer registers the model and scheduler; MapModelServer maps the OpenAI routes.</summary>
public static class ModelServerApp
{
    public static IServiceCollection AddModelServer(this IServiceCollection services, ModelServerOptions options, ServedModel model)
    {
        services.AddSingleton(options);
        services.AddSingleton(model);
        services.AddSingleton<GenerationScheduler>();
        return services;
    }

    public static IEndpointRouteBuilder MapModelServer(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/models", (HttpContext http, ServedModel m) => Guard(http, () => OpenAiResponses.WriteJsonAsync(http.Response, j =>
        {
            j.WriteStartObject();
            j.WriteString("object", "list");
            j.WriteStartArray("data");
            j.WriteStartObject();
            j.WriteString("id", m.Name); j.WriteString("object", "model"); j.WriteNumber("created", OpenAiResponses.Now());
            j.WriteString("owned_by", "lopaproxy"); j.WriteNumber("max_model_len", m.ContextLength); j.WriteNumber("hidden_size", m.HiddenSize);
            j.WriteEndObject();
            j.WriteEndArray();
            j.WriteEndObject();
        })));
        app.MapPost("/v1/completions", (HttpContext http, ServedModel m, GenerationScheduler s, ModelServerOptions o) => Guard(http, () => CompletionsEndpoint.HandleAsync(http, m, s, o)));
        app.MapPost("/v1/chat/completions", (HttpContext http, ServedModel m, GenerationScheduler s, ModelServerOptions o) => Guard(http, () => ChatCompletionsEndpoint.HandleAsync(http, m, s, o)));
        app.MapGet("/health", () => Results.Ok());
        app.MapFallback((HttpContext http) => ApiException.WriteAsync(http.Response, 404, $"no route for {http.Request.Method} {http.Request.Path}", "not_found_error", null, "route_not_found"));
        return app;
    }

    /// <summary>Turns failures into OpenAI error JSON; a client that went away just ends the request.</summary>
    private static async Task Guard(HttpContext http, Func<Task> handler)
    {
        try { await handler(); }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested) { }
        catch (ApiException e) when (!http.Response.HasStarted) { await e.WriteAsync(http.Response); }
        catch (BadHttpRequestException e) when (!http.Response.HasStarted)
        {
            await ApiException.WriteAsync(http.Response, e.StatusCode, e.Message, e.StatusCode == 413 ? "invalid_request_error" : "invalid_request_error", null, e.StatusCode == 413 ? "body_too_large" : "bad_request");
        }
        catch (Exception e) when (!http.Response.HasStarted)
        {
            http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("LoPAProxy.ModelServer").LogError(e, "request failed");
            await ApiException.WriteAsync(http.Response, 500, "internal error: " + e.Message, "server_error", null, "internal_error");
        }
    }

    /// <summary>The engine and thread settings, for benchmark output.</summary>
    public static string Describe(WebApplication app)
    {
        var options = app.Services.GetRequiredService<ModelServerOptions>();
        string gemm = LoPAProxy.Engine.Blas.Gemm.Default.GetType().Name;
        return $"LoPA engine ({gemm}; OPENBLAS_NUM_THREADS={Environment.GetEnvironmentVariable("OPENBLAS_NUM_THREADS") ?? "unset"}), " +
            $"{options.MaxConcurrent} generations at once, each on one thread";
    }

    /// <summary>A ready-to-run server bound to options.Host:options.Port (port 0 picks a free one).</summary>
    public static WebApplication Build(ModelServerOptions options, ServedModel? model = null)
    {
        model ??= ServedModel.Load(options.ModelPath, options.TokenizerPath, options.ModelName);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://{options.Host}:{options.Port}");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = options.MaxBodyBytes);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddModelServer(options, model);
        WebApplication app = builder.Build();
        app.MapModelServer();
        return app;
    }
}
