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
        var bytes = new MemoryStream();
        await http.Request.Body.CopyToAsync(bytes, http.RequestAborted); // bounded by Kestrel's body limit
        try
        {
            using JsonDocument doc = JsonDocument.Parse(bytes.GetBuffer().AsMemory(0, (int)bytes.Length),
                Engine.Formats.StrictJson.Options());
            body = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            string why = Engine.Formats.StrictJson.Describe(e, bytes.GetBuffer().AsSpan(0, (int)bytes.Length));
            throw Errors.InvalidJson(why);
        }
        if (body.ValueKind != JsonValueKind.Object) throw Errors.NotAJsonObject();
        string? model = JsonFields.String(body, "model");
        if (model != null && model != served.Name) throw Errors.ModelNotFound(model);
        return body;
    }
}
