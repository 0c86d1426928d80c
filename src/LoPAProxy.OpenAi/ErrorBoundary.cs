using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace LoPAProxy.OpenAi;

/// <summary>
/// The one error boundary of both servers, outermost: every response carries x-request-id (the id in the request
/// log), and whatever goes wrong reaches the client as OpenAI error JSON — an <see cref="ApiException"/> as it
/// says, what an app's <see cref="IApiErrorMapper"/>s recognise as they map it, a body Kestrel refused (400/413),
/// and anything unexpected as a 500 naming the request id (logged; its message never leaves) — never an empty body.
/// A client that left is not answered.
/// </summary>
public sealed class ErrorBoundary(RequestDelegate next, IEnumerable<IApiErrorMapper> mappers,
    ILogger<ErrorBoundary> log)
{
    public const string RequestIdHeader = "x-request-id";

    public async Task InvokeAsync(HttpContext http)
    {
        http.Response.Headers[RequestIdHeader] = http.TraceIdentifier;
        try
        {
            await next(http);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client left; nobody is there to answer.
        }
        catch (Exception e) when (!http.Response.HasStarted && !http.RequestAborted.IsCancellationRequested)
        {
            ApiException error = Translate(e, http);
            http.Response.Clear();
            http.Response.Headers[RequestIdHeader] = http.TraceIdentifier;
            await error.WriteAsync(http.Response);
        }
    }

    private ApiException Translate(Exception e, HttpContext http)
    {
        if (e is ApiException api) return api;
        foreach (IApiErrorMapper mapper in mappers)
        {
            if (mapper.Map(e, http) is { } mapped) return mapped;
        }
        if (e is BadHttpRequestException bad) return Errors.BadHttpRequest(bad);
        log.LogError(e, "request {RequestId} failed unexpectedly", http.TraceIdentifier);
        return Errors.Internal(http.TraceIdentifier);
    }
}
