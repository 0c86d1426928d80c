using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.Proxy.Store;

/// <summary>
/// What the store and the adapter readers throw, as OpenAI errors: an outage 503 store_unavailable with
/// Retry-After (<see cref="StoreOutage"/>), not found 404, a conflict 409, a quota 429, an invalid adapter file or
/// JSON or multipart body 400.
/// </summary>
public sealed class StoreErrors(StoreOutage outage) : IApiErrorMapper
{
    public ApiException? Map(Exception error, HttpContext http) => error switch
    {
        _ when StoreOutage.Is(error) => outage.Refusal(error),
        StoreNotFoundException e => new ApiException(404, e.Message, null, "not_found"),
        StoreConflictException e => new ApiException(409, e.Message, null, "conflict")
        {
            Type = "invalid_request_error",
        },
        StoreQuotaException e => new ApiException(429, e.Message, null, "quota_exceeded")
        {
            Type = "invalid_request_error",
        },
        AdapterException e => ApiException.BadRequest(e.Message, "file", "invalid_adapter"),
        JsonException e => Errors.InvalidJson(e.Message),
        _ when IsMalformedForm(error) =>
            ApiException.BadRequest($"malformed multipart body: {error.Message}", null, "invalid_multipart"),
        _ => null,
    };

    /// <summary>What ASP.NET Core's form reader throws for a body that is not well-formed multipart.</summary>
    private static bool IsMalformedForm(Exception e) =>
        e is InvalidDataException or InvalidOperationException { Source: "Microsoft.AspNetCore.WebUtilities" }
        || (e is IOException && e.Message.Contains("Unexpected end of", StringComparison.Ordinal));
}
