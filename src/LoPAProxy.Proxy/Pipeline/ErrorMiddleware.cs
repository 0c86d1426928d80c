using LoPAProxy.OpenAi;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace LoPAProxy.Proxy.Pipeline;

/// <summary>
/// Outermost: every response carries x-request-id (the id in the request log), and whatever goes wrong still
/// reaches the client as OpenAI error JSON — ApiException with its own status, a body Kestrel refused (400/413),
///, a store outage as 503 store_unavailable with Retry-After, and anything unexpected as a 500 naming the
/// request id — never an empty body.
/// </summary>
public sealed class ErrorMiddleware(RequestDelegate next, Store.StoreOutage outage, ILogger<ErrorMiddleware> log)
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
        catch (ApiException e) when (!http.Response.HasStarted)
        {
            await Restart(http);
            await e.WriteAsync(http.Response);
        }
        catch (Exception e) when (Store.StoreOutage.Is(e) && !http.Response.HasStarted
            && !http.RequestAborted.IsCancellationRequested)
        {
            // Counted and logged once per interval by StoreOutage, not per request.
            await Restart(http);
            await outage.Refusal(e).WriteAsync(http.Response);
        }
        catch (BadHttpRequestException e) when (!http.Response.HasStarted)
        {
            await Restart(http);
            bool tooLarge = e.StatusCode == StatusCodes.Status413PayloadTooLarge;
            await ApiException.WriteAsync(http.Response, e.StatusCode,
                tooLarge ? "the request body is over this route's size limit" : e.Message,
                "invalid_request_error", null, tooLarge ? "body_too_large" : "bad_request");
        }
        catch (Exception e) when (!http.Response.HasStarted)
        {
            log.LogError(e, "request {RequestId} failed unexpectedly", http.TraceIdentifier);
            await Restart(http);
            await ApiException.WriteAsync(http.Response, 500,
                $"The server had an error while processing your request (request id {http.TraceIdentifier}).",
                "server_error", null, "internal_error");
        }
    }

    private static Task Restart(HttpContext http)
    {
        http.Response.Clear();
        http.Response.Headers[RequestIdHeader] = http.TraceIdentifier;
        return Task.CompletedTask;
    }
}
