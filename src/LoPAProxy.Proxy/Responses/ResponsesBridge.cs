using System.Text.Json.Nodes;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Pipeline;
using LoPAProxy.Proxy.Requests;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy;

namespace LoPAProxy.Proxy.Responses;

/// <summary>
/// POST /v1/responses, bridged onto the chat backend: before routing, an authenticated Responses request becomes
/// the chat completions request it means (<see cref="ResponsesRequest"/>) on /v1/chat/completions, so the rest of
/// the proxy treats it as chat — the same adapter lookup, Z, limits, usage, metrics and backend — and its answer is
/// turned back into the Responses shape on the way out (<see cref="ResponsesAnswer"/>, in
/// <see cref="AnswerRelay"/>). Where a route for /v1/responses is configured (a backend that serves it natively,
/// such as vLLM) and the request names no adapter, it is forwarded there as it is.
/// </summary>
public sealed class ResponsesBridge(RequestDelegate next, IOptions<LoPAOptions> options, IProxyStateLookup routes)
{
    public const string Path = "/v1/responses", ChatPath = "/v1/chat/completions";

    public async Task InvokeAsync(HttpContext http)
    {
        string? prefix = ResponsesPrefix(http);
        if (prefix is null || http.User.Identity?.IsAuthenticated != true)
        {
            await next(http);
            return;
        }
        JsonObject body = await JsonBodies.ReadObjectAsync(http.Request, options.Value.Limits.MaxBodyBytes,
            http.RequestAborted);
        bool namesAdapter = !string.IsNullOrEmpty(http.Request.Headers[Requests.LoPAHeaders.Adapter])
            || Requests.JsonAccess.String(body, "model")?.Contains(':') == true;
        if (!namesAdapter && HasNativeRoute())
        {
            JsonBodies.Replace(http.Request, body);
            await next(http);
            return;
        }
        JsonObject chat = ResponsesRequest.ToChat(body);
        http.Features.Set(new ResponsesAnswer(body));
        http.Request.Path = prefix + ChatPath; // a route prefix (/team-a/v1/responses) is kept
        JsonBodies.Replace(http.Request, chat);
        await next(http);
    }

    /// <summary>For a POST to …/v1/responses, what comes before /v1/responses ("" without a prefix); else
    /// null.</summary>
    private static string? ResponsesPrefix(HttpContext http)
    {
        if (!HttpMethods.IsPost(http.Request.Method)) return null;
        string path = RequestRoute.Classify(http.Request.Path).CanonicalPath;
        return path.EndsWith(Path, StringComparison.OrdinalIgnoreCase) ? path[..^Path.Length] : null;
    }

    private bool HasNativeRoute() => routes.GetRoutes().Any(r =>
        string.Equals(r.Config.Match.Path, Path, StringComparison.OrdinalIgnoreCase));
}
