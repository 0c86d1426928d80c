using LoPAProxy.ModelServer.Endpoints;
using LoPAProxy.ModelServer.Generation;
using LoPAProxy.OpenAi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

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
    /// <exception cref="OptionsValidationException">naming every setting that is wrong.</exception>
    public static void ValidateOptions(ModelServerOptions options)
    {
        ValidateOptionsResult result = new ModelServerOptionsValidator().Validate(Options.DefaultName, options);
        if (result.Failed)
            throw new OptionsValidationException(Options.DefaultName, typeof(ModelServerOptions), result.Failures);
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
