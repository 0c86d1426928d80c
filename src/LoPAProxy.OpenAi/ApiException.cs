using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.OpenAi;

/// <summary>A request that fails with an OpenAI-style error body: {"error":{"message","type","param","code"}}.</summary>
public sealed class ApiException(int status, string message, string? param = null, string? code = null) : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string? Code { get; } = code;

    public static ApiException BadRequest(string message, string? param = null, string code = "invalid_request") => new(400, message, param, code);

    /// <summary>OpenAI's error type; by default the one its API uses for <see cref="Status"/>.</summary>
    public string Type { get; init; } = status switch
    {
        400 or 413 or 422 => "invalid_request_error",
        401 => "authentication_error",
        404 => "not_found_error",
        429 => "requests",
        503 => "service_unavailable",
        _ => "server_error",
    };

    /// <summary>Headers the answer carries (e.g. Retry-After); they survive the error boundary's reset.</summary>
    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>();

    public Task WriteAsync(HttpResponse response)
    {
        foreach (var (name, value) in Headers) response.Headers[name] = value;
        return WriteAsync(response, Status, Message, Type, Param, Code);
    }

    public static async Task WriteAsync(HttpResponse response, int status, string message, string type, string? param, string? code)
    {
        response.StatusCode = status;
        response.ContentType = "application/json";
        await using var json = new Utf8JsonWriter(response.Body);
        json.WriteStartObject();
        json.WriteStartObject("error");
        json.WriteString("message", message);
        json.WriteString("type", type);
        if (param is null) json.WriteNull("param"); else json.WriteString("param", param);
        if (code is null) json.WriteNull("code"); else json.WriteString("code", code);
        json.WriteEndObject();
        json.WriteEndObject();
    }
}
