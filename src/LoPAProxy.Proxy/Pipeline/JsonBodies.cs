using System.Text.Json;
using System.Text.Json.Nodes;
using LoPAProxy.ModelServer.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.Proxy.Pipeline;

/// <summary>
/// The one way request bodies are read as JSON: bounded in size, nesting 64 deep at most, and duplicate keys
/// refused (a backend may read the first and the proxy the last; parsers disagree). Every failure is a typed 400/413.
/// </summary>
public static class JsonBodies
{
    public static readonly JsonDocumentOptions Strict = new() { MaxDepth = 64, AllowDuplicateProperties = false };

    /// <summary>The body as a JSON object, read whole (at most <paramref name="limit"/> bytes).</summary>
    public static async Task<JsonObject> ReadObjectAsync(HttpRequest request, long limit, CancellationToken cancel)
    {
        await BodyLimit.ApplyAsync(request.HttpContext, limit, "the request body");
        MemoryStream buffer = await ReadBoundedAsync(request, limit, cancel);
        JsonNode? node = Parse(buffer);
        return node as JsonObject ?? throw ApiException.BadRequest("the body must be a JSON object", null, "invalid_json");
    }

    /// <summary>The body as a JSON document (the admin and tenant APIs).</summary>
    public static async Task<JsonDocument> ReadDocumentAsync(HttpRequest request, long limit, CancellationToken cancel)
    {
        await BodyLimit.ApplyAsync(request.HttpContext, limit, "the request body");
        MemoryStream buffer = await ReadBoundedAsync(request, limit, cancel);
        try
        {
            return JsonDocument.Parse(buffer, Strict);
        }
        catch (JsonException e)
        {
            throw Invalid(e);
        }
    }

    /// <summary>A string property, or a typed 400 naming it.</summary>
    public static string RequiredString(JsonDocument document, string name)
    {
        if (document.RootElement.ValueKind == JsonValueKind.Object
            && document.RootElement.TryGetProperty(name, out JsonElement value)
            && value.ValueKind == JsonValueKind.String)
            return value.GetString()!;
        throw ApiException.BadRequest($"'{name}' is required (a string)", name);
    }

    private static JsonNode? Parse(MemoryStream buffer)
    {
        try
        {
            JsonNode? node = JsonNode.Parse(buffer, documentOptions: Strict);
            // JsonObject builds its dictionary lazily; force it so a duplicate surfaces here, not mid-rewrite.
            if (node is JsonObject o) _ = o.Count;
            return node;
        }
        catch (JsonException e)
        {
            throw Invalid(e);
        }
        catch (ArgumentException e)
        {
            throw ApiException.BadRequest($"the body is not valid JSON: {e.Message}", null, "invalid_json");
        }
    }

    private static ApiException Invalid(JsonException e) =>
        ApiException.BadRequest($"the body is not valid JSON: {e.Message}", null, "invalid_json");

    private static async Task<MemoryStream> ReadBoundedAsync(HttpRequest request, long limit, CancellationToken cancel)
    {
        var buffer = new MemoryStream();
        byte[] chunk = new byte[81920];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancel)) > 0)
        {
            if (buffer.Length + read > limit) throw TooLarge(limit);
            buffer.Write(chunk, 0, read);
        }
        buffer.Position = 0;
        return buffer;
    }

    public static ApiException TooLarge(long limit) =>
        new(413, $"the request body is over the {limit}-byte limit", null, "body_too_large");
}
