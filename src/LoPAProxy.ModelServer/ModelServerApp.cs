using LoPAProxy.ModelServer.Endpoints;
using LoPAProxy.ModelServer.Generation;
using LoPAProxy.OpenAi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LoPAProxy.ModelServer;

/// <summary>Hosting: AddModelServer registers the model, decoder and scheduler; MapModelServer maps the OpenAI
/// routes, behind the shared error boundary (<see cref="ErrorBoundary"/>, which Build puts first).</summary>
public static class ModelServerApp
{
    public static IServiceCollection AddModelServer(this IServiceCollection services, ModelServerOptions options,
        ServedModel model)
    {
        ValidateOptions(options);
        services.AddSingleton(options);
        services.AddSingleton(model);
        services.AddSingleton(provider => new BatchDecoder(model, options));
        services.AddSingleton<GenerationScheduler>();
        services.AddSingleton<ModelServerServices>();
        return services;
    }

    public static IEndpointRouteBuilder MapModelServer(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/models", (HttpContext http, ServedModel model) => ListModels(http, model));
        app.MapPost("/v1/completions", (HttpContext http, ModelServerServices services) =>
            CompletionsEndpoint.HandleAsync(http, services));
        app.MapPost("/v1/chat/completions", (HttpContext http, ModelServerServices services) =>
            ChatCompletionsEndpoint.HandleAsync(http, services));
        app.MapGet("/health", () => Results.Ok());
        app.MapFallback((HttpContext http) => ApiException.WriteAsync(http.Response, 404,
            $"no route for {http.Request.Method} {http.Request.Path}", "not_found_error", null, "route_not_found"));
        return app;
    }

    /// <summary>The engine and thread settings, for logs and benchmark output.</summary>
    public static string Describe(WebApplication app)
    {
        var decoder = app.Services.GetRequiredService<BatchDecoder>();
        return $"llama.cpp via LLamaSharp, {decoder.Threads} threads, {decoder.Slots} sequences decoded together, " +
            $"{decoder.KvCacheType} KV cache, flash attention off";
    }

    /// <summary>A ready-to-run server bound to options.Host:options.Port (port 0 picks a free one).</summary>
    public static WebApplication Build(ModelServerOptions options, ServedModel? model = null)
    {
        ValidateOptions(options);
        model ??= ServedModel.Load(options);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://{options.Host}:{options.Port}");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = options.MaxBodyBytes);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddModelServer(options, model);
        WebApplication app = builder.Build();
        app.UseOpenAiErrors();
        app.MapModelServer();
        // The llama.cpp context (KV cache, compute graph) is made now, not on the first request.
        app.Services.GetRequiredService<BatchDecoder>();
        return app;
    }

    /// <summary>Refuses settings that cannot work, at start-up rather than on the first request.</summary>
    public static void ValidateOptions(ModelServerOptions options)
    {
        var errors = new List<string>();
        if (options.MaxConcurrent is < 1 or > 256) errors.Add("MaxConcurrent must be 1 to 256");
        if (options.MaxQueued < 0) errors.Add("MaxQueued must be ≥ 0");
        if (options.Threads is < 1 or > 1024) errors.Add("Threads must be 1 to 1024");
        if (options.ContextLength is < 1) errors.Add("ContextLength must be ≥ 1");
        if (options.KvCacheType is not ("f32" or "f16" or "q8_0")) errors.Add("KvCacheType must be f32, f16 or q8_0");
        if (options.MaxTokensLimit < 1) errors.Add("MaxTokensLimit must be ≥ 1");
        if (errors.Count > 0) throw new ArgumentException("model server options: " + string.Join("; ", errors));
    }

    private static Task ListModels(HttpContext http, ServedModel model) => OpenAiResponses.WriteJsonAsync(http.Response,
        j =>
        {
            j.WriteStartObject();
            j.WriteString("object", "list");
            j.WriteStartArray("data");
            j.WriteStartObject();
            j.WriteString("id", model.Name);
            j.WriteString("object", "model");
            j.WriteNumber("created", OpenAiResponses.Now());
            j.WriteString("owned_by", "lopaproxy");
            j.WriteNumber("max_model_len", model.ContextLength);
            j.WriteNumber("hidden_size", model.HiddenSize);
            j.WriteEndObject();
            j.WriteEndArray();
            j.WriteEndObject();
        });
}
