using LoPAProxy.OpenAi;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace LoPAProxy.Proxy.Requests;

/// <summary>
/// A route's request-body limit. A body declared over it is refused with a 413 before it is parsed; a modest excess
/// is read to the end and discarded first, so an ordinary HTTP client sees the 413 instead of a connection reset
/// in the middle of sending (what answering early and closing does to it).
/// </summary>
public static class BodyLimit
{
    /// <summary>How far past a limit a declared body is still drained before the 413.</summary>
    public const long DrainAllowanceBytes = 16L << 20;

    /// <summary>Sets this request's limit (where the server still allows it) and refuses a body declared over
    /// it.</summary>
    public static async Task ApplyAsync(HttpContext http, long limit, string what)
    {
        var size = http.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (size is { IsReadOnly: false }) size.MaxRequestBodySize = limit;
        if (http.Request.ContentLength is not long declared || declared <= limit) return;
        if (size is { IsReadOnly: false } && declared - limit <= DrainAllowanceBytes)
        {
            size.MaxRequestBodySize = declared;
            await http.Request.Body.CopyToAsync(Stream.Null, http.RequestAborted);
        }
        throw TooLarge(limit, what);
    }

    public static ApiException TooLarge(long limit, string what) =>
        new(413, $"{what} is over the {limit}-byte limit", null, "body_too_large");
}
