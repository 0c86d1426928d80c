using System.Text.Json;
using LoPAProxy.ModelServer.Generation;
using LoPAProxy.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.ModelServer.Endpoints;

internal static class RequestBody
{
    /// <summary>Parses the JSON object body and checks "model" names the served model (404 otherwise, as vLLM).</summary>
    public static async Task<JsonElement> ReadAsync(HttpContext http, ServedModel served)
    {
        JsonElement body;
        try
        {
            using JsonDocument doc = await JsonDocument.ParseAsync(http.Request.Body, new JsonDocumentOptions { MaxDepth = 32 }, http.RequestAborted);
            body = doc.RootElement.Clone();
        }
        catch (JsonException e) { throw ApiException.BadRequest($"the body is not valid JSON: {e.Message}", null, "invalid_json"); }
        if (body.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest("the body must be a JSON object", null, "invalid_json");
        string? model = JsonFields.String(body, "model");
        if (model != null && model != served.Name) throw new ApiException(404, $"The model `{model}` does not exist.", "model", "model_not_found");
        return body;
    }
}
