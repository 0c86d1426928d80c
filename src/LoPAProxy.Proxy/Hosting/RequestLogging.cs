using LoPAProxy.Proxy.Usage;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Serilog;
using Serilog.AspNetCore;
using Serilog.Events;

namespace LoPAProxy.Proxy.Hosting;

/// <summary>
/// Serilog's request logging (one event per request, written when the response ends) with LoPA's fields: request id,
/// tenant, adapter, encoder and generator milliseconds, soft-prompt rows and bytes added. Never keys or prompt text.
/// Health and metrics scrapes log at Verbose (below the default level) so probes do not flood the log.
/// </summary>
public static class RequestLogging
{

    public const string Template = "{RequestMethod} {RequestPath} {StatusCode} {Elapsed:0.0} ms id={RequestId} "
        + "tenant={Tenant} adapter={Adapter} encoder_ms={EncoderMs:0.00} generator_ms={GeneratorMs:0.00} "
        + "rows={SoftPromptRows} bytes_added={BytesAdded}";

    /// <summary>Request logging to the proxy's logger (Serilog's default would be the static, silent
    /// Log.Logger).</summary>
    public static void Configure(RequestLoggingOptions options, IServiceProvider services)
    {
        options.Logger = services.GetRequiredService<ILogger>();
        options.MessageTemplate = Template;
        options.GetLevel = Level;
        options.EnrichDiagnosticContext = Enrich;
    }

    private static LogEventLevel Level(HttpContext http, double elapsedMs, Exception? error)
    {
        if (error is not null || http.Response.StatusCode >= 500) return LogEventLevel.Error;
        string path = http.Request.Path.Value ?? "";
        bool probe = path is "/healthz" or "/readyz" or "/metrics";
        return probe ? LogEventLevel.Verbose : LogEventLevel.Information;
    }

    private static void Enrich(IDiagnosticContext context, HttpContext http)
    {
        RequestRecord? r = http.Features.Get<RequestRecord>();
        context.Set("RequestId", http.TraceIdentifier);
        context.Set("Tenant", r?.Tenant);
        context.Set("Adapter", r?.Adapter);
        context.Set("EncoderMs", r?.Timings.EncoderMs ?? 0);
        context.Set("GeneratorMs", r?.Timings.GeneratorMs ?? 0);
        context.Set("SoftPromptRows", r?.SoftPromptRows ?? 0);
        context.Set("BytesAdded", r?.BytesAdded ?? 0L);
        context.Set("Streaming", r?.Streaming ?? false);
    }
}
