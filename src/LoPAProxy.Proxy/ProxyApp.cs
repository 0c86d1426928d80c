using System.Globalization;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Auth;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Dialects;
using LoPAProxy.Proxy.FineTuning;
using LoPAProxy.Proxy.Hosting;
using LoPAProxy.Proxy.Inspection;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Models;
using LoPAProxy.Proxy.Pipeline;
using LoPAProxy.Proxy.SoftPrompts;
using LoPAProxy.Proxy.Tenancy;
using LoPAProxy.Proxy.Usage;
using LoPAProxy.Proxy.WebConsole;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Serilog;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace LoPAProxy.Proxy;

/// <summary>Hosting: AddLoPA() registers the LoPA services; MapLoPAProxy() maps health checks and YARP with the LoPA
/// step.</summary>
public static class ProxyApp
{
    public static IServiceCollection AddLoPA(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<LoPAOptions>().Bind(configuration.GetSection("LoPA")).ValidateOnStart();
        services.AddSingleton<IValidateOptions<LoPAOptions>, LoPAOptionsValidator>();
        services.AddSingleton<Store.ITenancyStore>(sp =>
            Store.TenancyStores.Open(sp.GetRequiredService<IOptions<LoPAOptions>>().Value.Store));
        services.AddSingleton<Store.StoreOutage>();
        services.AddApiErrorMapper<Store.StoreErrors>();
        services.AddSingleton<TenantKeys>();
        services.AddSingleton<AdapterCatalog>();
        services.AddSingleton<EncoderPool>();
        services.AddLoPAAuthentication();
        services.AddOpenApi(o => o.AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "LoPAProxy admin and tenant APIs";
            document.Info.Description = "Tenants, keys and adapters. The OpenAI routes are OpenAI's.";
            return Task.CompletedTask;
        }));
        services.AddSingleton<InstanceVectors>();
        services.AddSingleton<SoftPromptService>();
        services.AddSingleton<FoundationModels>();
        services.AddSingleton<Limits.RewriteBudget>();
        services.AddSingleton<Limits.PromptBudget>();
        services.AddSingleton<ClientEmbeddings>();
        services.AddSingleton<Inspection.SoftPromptInspector>();
        services.AddLoPALimits();
        services.AddLoPAUsage();
        services.AddSingleton(sp => (Store.IFileStore)sp.GetRequiredService<Store.ITenancyStore>());
        services.AddBackendDialects();
        services.AddHostedService<Hosting.StartupWork>();
        services.AddReverseProxy().LoadFromConfig(configuration.GetSection("ReverseProxy"))
            .AddConfigFilter<Hosting.ProxyRouteDefaults>()
            .AddTransforms(AddTransforms);
        services.AddHttpClient("readiness").ConfigureHttpClient(c => c.Timeout = TimeSpan.FromSeconds(3));
        Observability.Telemetry.Add(services, configuration);
        services.AddRouting();
        RouteRegardlessOfContentType(services);
        return services;
    }

    /// <summary>
    /// Endpoints declare their JSON bodies (for the OpenAPI document), but routing must not choose by Content-Type:
    /// a body without a JSON type would fall through to "route not found". The handlers answer 415 themselves.
    /// </summary>
    private static void RouteRegardlessOfContentType(IServiceCollection services)
    {
        foreach (ServiceDescriptor policy in services.Where(d => d.ServiceType ==
            typeof(Microsoft.AspNetCore.Routing.MatcherPolicy) && d.ImplementationType?.Name == "AcceptsMatcherPolicy")
            .ToList())
        {
            services.Remove(policy);
        }
    }

    private static void AddTransforms(TransformBuilderContext builder)
    {
        var options = builder.Services.GetRequiredService<IOptions<LoPAOptions>>().Value;
        BackendCredentials.Apply(builder, options);
        builder.AddResponseTransform(DialectServices.MapNativeAnswerAsync);
        builder.AddResponseTransform(AnswerRelay.TransformAsync);
    }

    public static WebApplication MapLoPAProxy(this WebApplication app)
    {
        app.UseSerilogRequestLogging(o => Hosting.RequestLogging.Configure(o, app.Services));
        app.UseMiddleware<RequestMetricsMiddleware>();
        app.UseOpenAiErrors();
        app.Use(Observability.ManagementListener.GateAsync);
        // Explicitly here, inside the error boundary, so a failing key lookup is an OpenAI error (a store outage:
        // 503 store_unavailable).
        app.UseAuthentication();
        // Before routing: a /v1/responses request becomes the chat request it means, and is routed as chat.
        app.UseMiddleware<Responses.ResponsesBridge>();
        app.UseRouting();
        app.UseAuthorization();
        app.MapGet("/healthz", () => Results.Ok(new { status = "ok" }));
        app.MapReadiness();
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapTenancy();
        app.MapUsage();
        app.MapFiles();
        app.MapInspection();
        app.MapModelLookup();
        app.MapConsole();
        app.MapReverseProxy(pipeline => pipeline.UseMiddleware<LoPAMiddleware>());
        app.MapFallback(RouteNotFoundAsync);
        return app;
    }

    /// <summary>An unknown route: 401 without a valid tenant or admin key (nothing is revealed), else 404.</summary>
    private static async Task RouteNotFoundAsync(HttpContext h)
    {
        if (h.User.Identity?.IsAuthenticated != true)
        {
            await ApiException.WriteAsync(h.Response, 401, "a valid API key is required (Authorization: Bearer <key>)",
                "authentication_error", null, "invalid_api_key");
            return;
        }
        await ApiException.WriteAsync(h.Response, 404, NotServed(h), "not_found_error", null, "route_not_found");
    }

    /// <summary>
    /// What an unserved path is told: for an OpenAI endpoint (/v1/embeddings, /v1/audio/…) that this deployment
    /// does not serve it, and which it does — clients otherwise report a bare 404 as "model not found".
    /// </summary>
    private static string NotServed(HttpContext h)
    {
        string asked = $"{h.Request.Method} {h.Request.Path}";
        if (!h.Request.Path.StartsWithSegments("/v1", StringComparison.OrdinalIgnoreCase))
            return $"no route for {asked}";
        IEnumerable<string> proxied = h.RequestServices.GetRequiredService<IProxyStateLookup>().GetRoutes()
            .Select(r => r.Config.Match.Path).OfType<string>()
            .Where(p => p.StartsWith("/v1/", StringComparison.Ordinal));
        string[] served = proxied.Concat(["/v1/responses", "/v1/models/{id}", "/v1/adapters", "/v1/files",
            "/v1/usage", "/v1/limits"]).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        return $"This deployment does not serve {asked}. It serves: {string.Join(", ", served)}.";
    }

    /// <summary>
    /// Serilog on the console: one JSON object per line (LoPA:LogFormat json — the default in containers, for log
    /// shippers) or readable text lines (text — the default elsewhere).
    /// </summary>
    private static Serilog.ILogger Logger(LogFormat? configured, Hosting.ProxyLogLevel level)
    {
        bool inContainer = Environment.GetEnvironmentVariable("DOTNET_RUNNING_IN_CONTAINER") == "true";
        LogFormat format = configured ?? (inContainer ? LogFormat.Json : LogFormat.Text);
        var logger = new LoggerConfiguration()
            .MinimumLevel.ControlledBy(level.Switch)
            .MinimumLevel.Override("Microsoft", Serilog.Events.LogEventLevel.Warning)
            .MinimumLevel.Override("Yarp", Serilog.Events.LogEventLevel.Warning)
            // Authentication brings Data Protection, which warns at start-up about key storage nothing here uses
            // (API keys are bearer secrets; no cookie or protected payload is issued).
            .MinimumLevel.Override("Microsoft.AspNetCore.DataProtection", Serilog.Events.LogEventLevel.Error)
            .Filter.ByExcluding(IsExplainedStartupFailure)
            .Enrich.FromLogContext();
        logger = format == LogFormat.Json
            ? logger.WriteTo.Console(new Serilog.Formatting.Json.JsonFormatter(renderMessage: true))
            : logger.WriteTo.Console(outputTemplate: "{Timestamp:HH:mm:ss} {Level:u3} {Message:lj}{NewLine}{Exception}",
                formatProvider: CultureInfo.InvariantCulture);
        return logger.CreateLogger();
    }

    /// <summary>The host's own report of a store that cannot be opened at start-up: the command prints it as one
    /// line (`lopa: the store cannot be opened …`) and exits 1, so the host's stack trace is left out.</summary>
    private static bool IsExplainedStartupFailure(Serilog.Events.LogEvent e) =>
        e.Exception is Store.StoreUnavailableException
        && e.Properties.TryGetValue("SourceContext", out var source)
        && source.ToString() == "\"Microsoft.Extensions.Hosting.Internal.Host\"";

    /// <summary>
    /// The options that shape the host itself (listeners, body limit, log format), read before the host exists. A
    /// value the binder cannot convert (a misspelt enum) fails here as a validation failure naming key, value and
    /// the valid names.
    /// </summary>
    private static LoPAOptions BindEarly(IConfiguration configuration)
    {
        try
        {
            // The binder silently skips a dictionary entry it cannot convert: clusters are bound one by one first,
            // so a cluster's misspelt value fails too.
            foreach (IConfigurationSection cluster in configuration.GetSection("LoPA:Clusters").GetChildren())
                cluster.Get<BackendOptions>();
            return configuration.GetSection("LoPA").Get<LoPAOptions>() ?? new LoPAOptions();
        }
        catch (InvalidOperationException e)
        {
            string why = e.InnerException is { } inner ? $"{e.Message} ({inner.Message})" : e.Message;
            throw new OptionsValidationException(Options.DefaultName, typeof(LoPAOptions), [why]);
        }
    }

    /// <summary>A ready-to-run proxy: configuration (proxy.json + environment), Serilog logs, body limit, graceful
    /// shutdown.</summary>
    /// <param name="configure">Last changes to the services (tests swap in a clock of their own).</param>
    public static WebApplication Build(IConfiguration configuration, string urls,
        Action<IServiceCollection>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration.AddConfiguration(configuration);
        var management = new Observability.ManagementListener();
        builder.Services.AddSingleton(management);
        LoPAOptions early = BindEarly(configuration);
        string managementUrls = early.Management.UrlsFor(urls);
        builder.WebHost.ConfigureKestrel(k => management.Configure(k, urls, managementUrls));
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = early.Limits.MaxBodyBytes);
        builder.Services.Configure<HostOptions>(h =>
            h.ShutdownTimeout = TimeSpan.FromSeconds(30)); // drain in-flight streams
        builder.Logging.ClearProviders();
        var logLevel = new Hosting.ProxyLogLevel();
        builder.Services.AddSingleton(logLevel);
        Serilog.ILogger logger = Logger(early.LogFormat, logLevel);
        builder.Services.AddSingleton(logger);
        builder.Services.AddSerilog(logger, dispose: true);
        builder.Services.AddLoPA(configuration);
        configure?.Invoke(builder.Services);
        var app = builder.Build();
        app.MapLoPAProxy();
        return app;
    }
}
