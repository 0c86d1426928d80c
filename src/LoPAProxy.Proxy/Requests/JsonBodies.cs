using System.Text.Json;
using System.Text.Json.Nodes;
using LoPAProxy.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.Proxy.Requests;

/// <summary>
/// The one way request bodies are read as JSON: bounded in size, nesting and duplicate keys as
/// <see cref="Engine.Formats.StrictJson"/> says (the same bound as the reference server). Every failure is a typed
/// 400/413.
/// </summary>
public static class JsonBodies
{
    public static readonly JsonDocumentOptions Strict = Engine.Formats.StrictJson.Options();

    /// <summary>
    /// How the proxy writes JSON it sends on (bodies for a backend, answers relayed to clients): escaping only what
    /// JSON requires. The default encoder escapes every base64 '+' as \u002B (and all non-ASCII), which inflated a
    /// soft-prompt body by ~26 % and cost ~12× the serialisation time (#26); these bodies are never HTML.
    /// </summary>
    public static readonly JsonSerializerOptions Outgoing = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The body as a JSON object, read whole (at most <paramref name="limit"/> bytes).</summary>
    public static async Task<JsonObject> ReadObjectAsync(HttpRequest request, long limit, CancellationToken cancel)
    {
        await BodyLimit.ApplyAsync(request.HttpContext, limit, "the request body");
        MemoryStream buffer = await ReadBoundedAsync(request, limit, cancel);
        JsonNode? node = Parse(buffer);
        return node as JsonObject ?? throw Errors.NotAJsonObject();
    }

    /// <summary>
    /// Makes <paramref name="body"/> the request's body (as <see cref="Outgoing"/> writes it), with an exact
    /// Content-Length; with embedded streams, they take their placeholders' places as the body is sent
    /// (<see cref="StreamedBody"/>).
    /// </summary>
    public static void Replace(HttpRequest request, JsonObject body,
        IReadOnlyList<EmbeddedText>? embedded = null)
    {
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(body, Outgoing);
        Stream content = embedded is { Count: > 0 } ? Requests.StreamedBody.Of(bytes, embedded)
            : new MemoryStream(bytes);
        request.Body = content;
        request.ContentLength = content.Length;
        request.ContentType = "application/json";
        request.Headers.TransferEncoding = default;
    }

    /// <summary>The body as a JSON document (the admin and tenant APIs).</summary>
    /// <exception cref="ApiException">415 unless the request says its body is JSON.</exception>
    public static async Task<JsonDocument> ReadDocumentAsync(HttpRequest request, long limit, CancellationToken cancel)
    {
        if (!request.HasJsonContentType())
        {
            throw new ApiException(415, $"send this body as JSON (Content-Type: application/json), not " +
                $"'{request.ContentType ?? "none"}'", null, "unsupported_media_type")
            {
                Type = "invalid_request_error",
            };
        }

        await BodyLimit.ApplyAsync(request.HttpContext, limit, "the request body");
        MemoryStream buffer = await ReadBoundedAsync(request, limit, cancel);
        RequireUtf8(buffer);
        try
        {
            return JsonDocument.Parse(buffer, Strict);
        }
        catch (JsonException e)
        {
            throw Invalid(e, buffer);
        }
    }

    /// <summary>A string property, or a typed 400 naming it.</summary>
    public static string RequiredString(JsonDocument document, string name)
    {
        if (document.RootElement.ValueKind == JsonValueKind.Object
            && document.RootElement.TryGetProperty(name, out JsonElement value)
            && value.ValueKind == JsonValueKind.String)
        {
            return value.GetString()!;
        }

        throw ApiException.BadRequest($"'{name}' is required (a string)", name);
    }

    private static JsonNode? Parse(MemoryStream buffer)
    {
        RequireUtf8(buffer);
        try
        {
            JsonNode? node = JsonNode.Parse(buffer, documentOptions: Strict);
            Materialise(node);
            return node;
        }
        catch (JsonException e)
        {
            throw Invalid(e, buffer);
        }
        catch (InvalidOperationException e)
        {
            throw ApiException.BadRequest($"the body holds a string .NET cannot read: {e.Message}", null,
                "invalid_json");
        }
        catch (ArgumentException e)
        {
            throw Errors.InvalidJson(e.Message);
        }
    }

    /// <summary>
    /// JsonNode reads keys and strings lazily; read them all now, so that what cannot be read (an escaped lone
    /// surrogate, "\ud800") is a 400 here rather than an exception in the middle of a rewrite. Depth is bounded (64).
    /// </summary>
    private static void Materialise(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (_, value) in o) Materialise(value);
                break;
            case JsonArray a:
                foreach (JsonNode? item in a) Materialise(item);
                break;
            case JsonValue v:
                _ = v.TryGetValue(out string? _);
                break;
        }
    }

    /// <summary>System.Text.Json checks string contents only when they are read; check the whole body up
    /// front.</summary>
    private static void RequireUtf8(MemoryStream buffer)
    {
        if (!System.Text.Unicode.Utf8.IsValid(buffer.GetBuffer().AsSpan(0, (int)buffer.Length)))
            throw ApiException.BadRequest("the body is not valid UTF-8", null, "invalid_json");
    }

    private static ApiException Invalid(JsonException e, MemoryStream buffer)
    {
        string why = Engine.Formats.StrictJson.Describe(e, buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
        return Errors.InvalidJson(why);
    }

    private static async Task<MemoryStream> ReadBoundedAsync(HttpRequest request, long limit, CancellationToken cancel)
    {
        var buffer = new MemoryStream();
        byte[] chunk = new byte[81920];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancel)) > 0)
        {
            if (buffer.Length + read > limit) throw BodyLimit.TooLarge(limit, "the request body");
            buffer.Write(chunk, 0, read);
        }
        buffer.Position = 0;
        return buffer;
    }

}
