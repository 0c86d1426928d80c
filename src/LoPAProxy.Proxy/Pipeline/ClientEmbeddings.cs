using System.Numerics.Tensors;
using System.Text.Json.Nodes;
using LoPAProxy.Engine.Formats;
using LoPAProxy.Engine.Formats.Torch;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Requests;
using LoPAProxy.Proxy.SoftPrompts;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Pipeline;

/// <summary>
/// Embeddings a client sends itself (vLLM's "prompt_embeds" field and chat parts, SGLang's "input_embeds"). The
/// model server trusts the proxy with them (vLLM: "trusted callers only"; CVE-2025-62164 came through them), so
/// they are refused unless the tenant is listed in LoPA:ClientEmbeds:AllowedTenants. An allowed tenant's are
/// checked strictly — standard base64 with no whitespace, one dense tensor read by the restricted unpickler,
/// [rows, d] or [1, rows, d] with d the backend's hidden size, the backend's wire dtype, finite, at most the
/// context length of rows — and forwarded re-encoded by our own writer, so the server never sees the client's bytes.
/// </summary>
public sealed class ClientEmbeddings(IOptions<LoPAOptions> options, PromptBudget budget)
{
    public const string PromptEmbeds = "prompt_embeds", InputEmbeds = "input_embeds";

    /// <summary>Refuses or validates (and re-encodes in place) every client-supplied embedding in the body.</summary>
    public void Police(JsonObject body, string tenant, BackendOptions? backend)
    {
        List<JsonNode> chatParts = ChatParts(body);
        bool any = body.ContainsKey(PromptEmbeds) || body.ContainsKey(InputEmbeds) || chatParts.Count > 0;
        if (!any) return;
        if (!options.Value.ClientEmbeds.AllowedTenants.Contains(tenant, StringComparer.Ordinal))
        {
            throw ApiException.BadRequest(
                "client-supplied embeddings (prompt_embeds, input_embeds) are not accepted for this tenant; " +
                "name an adapter instead", body.ContainsKey(InputEmbeds) ? InputEmbeds : PromptEmbeds,
                "prompt_embeds_not_allowed");
        }

        if (backend is null)
        {
            throw new ApiException(422, "this route's backend has no LoPA settings to check embeddings against",
                PromptEmbeds, "backend_not_configured");
        }

        int maxRows = budget.ContextLength(backend) ?? options.Value.Limits.MaxClientEmbeddingRows;
        if (body[PromptEmbeds] is { } field) body[PromptEmbeds] = CheckField(field, backend, maxRows);
        foreach (JsonNode part in chatParts)
        {
            part["data"] = CheckBase64(JsonAccess.Field(part, "data"), backend,
            maxRows);
        }

        if (body[InputEmbeds] is { } rows) CheckInputEmbeds(rows, backend.HiddenSize, maxRows);
    }

    private static List<JsonNode> ChatParts(JsonObject body)
    {
        var parts = new List<JsonNode>();
        if (body["messages"] is not JsonArray messages) return parts;
        foreach (JsonNode? message in messages)
        {
            if (JsonAccess.Field(message, "content") is not JsonArray content) continue;
            parts.AddRange(content.Where(p => MessageText.TypeOf(p) == PromptEmbeds).Select(p => p!));
        }
        return parts;
    }

    private JsonNode CheckField(JsonNode field, BackendOptions backend, int maxRows)
    {
        if (field is not JsonArray list) return CheckBase64(field, backend, maxRows);
        if (list.Count == 0 || list.Count > options.Value.Limits.MaxPromptsPerRequest)
        {
            throw ApiException.BadRequest(
                $"'prompt_embeds' must hold 1 to {options.Value.Limits.MaxPromptsPerRequest} tensors", PromptEmbeds);
        }

        return new JsonArray(list.Select(item => (JsonNode?)CheckBase64(item, backend, maxRows)).ToArray());
    }

    /// <summary>One base64 torch.save tensor → validated → re-encoded as our writer's canonical bytes.</summary>
    private static JsonNode CheckBase64(JsonNode? node, BackendOptions backend, int maxRows)
    {
        string data = node is JsonValue v && v.TryGetValue(out string? s) ? s
            : throw ApiException.BadRequest("prompt_embeds data must be a base64 string", PromptEmbeds);
        byte[] bytes = StrictBase64.Decode(data)
            ?? throw ApiException.BadRequest("prompt_embeds is not standard base64 (no line breaks, not URL-safe)",
                PromptEmbeds, "invalid_prompt_embeds");
        TorchTensor tensor;
        try
        {
            tensor = TorchFile.LoadTensor(bytes, PromptEmbeds);
        }
        catch (TensorFileException e)
        {
            throw ApiException.BadRequest($"prompt_embeds is not one dense tensor: {e.Message}", PromptEmbeds,
                "invalid_prompt_embeds");
        }
        DType wire = SoftPromptService.WireType(backend.WireDType);
        if (tensor.StoredAs != wire)
        {
            string takes = OptionNames.Of(backend.WireDType);
            throw Invalid($"prompt_embeds is {tensor.StoredAs}; this backend takes {takes}");
        }

        ReadOnlySpan<int> shape = tensor.Values.Shape;
        bool batchOfOne = shape.Length == 3 && shape[0] == 1;
        if (!(shape.Length == 2 || batchOfOne))
            throw Invalid($"prompt_embeds must be [rows, {backend.HiddenSize}] or [1, rows, {backend.HiddenSize}]");
        int rows = shape[^2], d = shape[^1];
        if (d != backend.HiddenSize)
            throw Invalid($"prompt_embeds rows are {d} wide; the model's hidden size is {backend.HiddenSize}");
        if (rows < 1 || rows > maxRows) throw Invalid($"prompt_embeds must have 1 to {maxRows} rows (has {rows})");
        float[] values = tensor.Values.Contiguous().ToArray();
        if (!TensorPrimitives.IsFiniteAll<float>(values)) throw Invalid("prompt_embeds holds NaN or infinite values");
        return SoftPromptService.Base64(values, rows, d, wire);
    }

    private static void CheckInputEmbeds(JsonNode node, int d, int maxRows)
    {
        if (node is not JsonArray outer || outer.Count == 0)
        {
            throw Invalid("input_embeds must be a non-empty list",
            InputEmbeds);
        }

        bool batch = outer[0] is JsonArray first && first.Count > 0 && first[0] is JsonArray;
        IEnumerable<JsonNode?> sequences = batch ? outer : new JsonNode?[] { outer };
        foreach (JsonNode? sequence in sequences)
        {
            if (sequence is not JsonArray rows || rows.Count == 0 || rows.Count > maxRows)
                throw Invalid($"each input_embeds sequence must have 1 to {maxRows} rows", InputEmbeds);
            foreach (JsonNode? row in rows)
            {
                if (row is not JsonArray values || values.Count != d)
                    throw Invalid($"each input_embeds row must hold {d} numbers", InputEmbeds);
                if (!values.All(IsFiniteNumber))
                    throw Invalid("input_embeds holds a value that is not a finite number", InputEmbeds);
            }
        }
    }

    private static bool IsFiniteNumber(JsonNode? value) =>
        value is JsonValue v && v.TryGetValue(out double x) && double.IsFinite(x) && Math.Abs(x) <= float.MaxValue;

    private static ApiException Invalid(string message, string param = PromptEmbeds) =>
        ApiException.BadRequest(message, param, "invalid_prompt_embeds");
}

/// <summary>RFC 4648 standard base64 only: no whitespace, no URL-safe alphabet, padding only at the end.</summary>
public static class StrictBase64
{
    public static byte[]? Decode(string text)
    {
        if (text.Length == 0 || text.Length % 4 != 0) return null;
        int padding = text.EndsWith("==", StringComparison.Ordinal) ? 2 : text.EndsWith('=') ? 1 : 0;
        for (int i = 0; i < text.Length - padding; i++)
        {
            char c = text[i];
            if (!(char.IsAsciiLetterOrDigit(c) || c is '+' or '/')) return null;
        }
        byte[] bytes = new byte[text.Length / 4 * 3];
        return Convert.TryFromBase64String(text, bytes, out int written) ? bytes[..written] : null;
    }
}
