using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Models;
using LoPAProxy.Proxy.Requests;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Limits;

/// <summary>A completions request's prompts: text, or token ids, each with its measured ids where known.</summary>
public sealed record CompletionPrompt(string? Text, int[]? Ids);

/// <summary>
/// Bounds every request's work before any encoder runs or any embedding row is built: a prompt list is counted
/// against <see cref="LimitOptions.MaxPromptsPerRequest"/>, and prompts are measured in tokens against the backend's
/// context length (<see cref="BackendOptions.MaxModelLen"/>, else the model file's). A prompt whose UTF-8 length
/// alone proves it too long (bytes / longest piece) is refused without tokenising it, so the tokenizer only ever
/// sees about context-length × longest-piece bytes. Over a limit: a typed 400 at once.
/// </summary>
public sealed class PromptBudget(FoundationModels models, RewriteBudget rewrites, IOptions<LoPAOptions> options)
{
    private LimitOptions Limits => options.Value.Limits;

    /// <summary>The backend's model, when the proxy has its files (needed for full-sequence dialects).</summary>
    public FoundationModel? ModelOf(BackendOptions backend) => backend.ModelPath is null
        ? null : models.Get(backend.ModelPath);

    /// <summary>The context length to enforce, or null when neither configuration nor a model file gives one.</summary>
    public int? ContextLength(BackendOptions backend) => backend.MaxModelLen ?? ModelOf(backend)?.ContextLength;

    /// <summary>Parses and measures "prompt"; <paramref name="softPromptRows"/> is m (0 without an adapter).</summary>
    public IReadOnlyList<CompletionPrompt> MeasureCompletions(JsonObject body, BackendOptions backend,
        int softPromptRows)
    {
        // Embeddings alone (checked by ClientEmbeddings) carry no text to measure.
        if (body["prompt"] is null && body["prompt_embeds"] is not null && softPromptRows == 0) return [];
        List<CompletionPrompt> prompts = ParsePrompts(body["prompt"]);
        FoundationModel? model = ModelOf(backend);
        int? context = ContextLength(backend);
        if (context is null) return prompts;
        int maxTokens = MaxTokens(body);
        var measured = new List<CompletionPrompt>(prompts.Count);
        foreach (CompletionPrompt prompt in prompts)
        {
            int[]? ids = prompt.Ids;
            if (ids is null && model is not null) ids = Tokenize(prompt.Text!, model, context.Value, softPromptRows);
            if (ids is not null) Check(ids.Length, softPromptRows, maxTokens, context.Value, "prompt");
            measured.Add(prompt with { Ids = ids });
        }
        return measured;
    }

    /// <summary>
    /// Measures the text of every message (a lower bound: the backend's chat template adds more); returns its
    /// token count, or null when the proxy has no tokenizer or context length for the backend.
    /// </summary>
    public int? MeasureChat(JsonObject body, BackendOptions backend, int softPromptRows)
    {
        FoundationModel? model = ModelOf(backend);
        int? context = ContextLength(backend);
        if (model is null || context is null || body["messages"] is not JsonArray messages) return null;
        int[] ids = Tokenize(MessageText.OfConversation(messages), model, context.Value, softPromptRows);
        Check(ids.Length, softPromptRows, MaxTokens(body), context.Value, "messages");
        return ids.Length;
    }

    /// <summary>
    /// Before any row is built: refuses at once a request over the per-request value cap (by default the model's
    /// whole context at its d), then reserves the bytes its rewrite will hold — <paramref name="bytesPerValue"/>,
    /// as its dialect measures it — from the process-wide budget until the answer has ended.
    /// </summary>
    public async Task ReserveRewriteAsync(HttpContext http, BackendOptions backend, long values, double bytesPerValue,
        CancellationToken cancel)
    {
        long cap = Limits.EmbeddingValuesCap(ContextLength(backend), backend.HiddenSize);
        if (values > cap)
        {
            throw ApiException.BadRequest(
                $"the request would build {values} embedding values; the limit is {cap} " +
                "(send fewer or shorter prompts)", "prompt", "request_too_large");
        }
        IDisposable lease = await rewrites.ReserveAsync((long)Math.Ceiling(values * bytesPerValue), cancel);
        http.Response.RegisterForDispose(lease);
    }

    private List<CompletionPrompt> ParsePrompts(JsonNode? prompt)
    {
        bool tokenIds = prompt is JsonArray { Count: > 0 } flat && flat.All(IsInteger);
        if (!tokenIds && prompt is JsonArray many && many.Count > Limits.MaxPromptsPerRequest)
        {
            throw ApiException.BadRequest(
                $"the request has {many.Count} prompts; at most {Limits.MaxPromptsPerRequest} are allowed per request",
                "prompt", "too_many_prompts");
        }

        return prompt switch
        {
            null => throw ApiException.BadRequest("'prompt' is required", "prompt", "nothing_to_encode"),
            JsonValue value when value.TryGetValue(out string? s) => [new CompletionPrompt(s, null)],
            JsonArray { Count: 0 } => throw ApiException.BadRequest("'prompt' is an empty list", "prompt"),
            JsonArray list when tokenIds => [new CompletionPrompt(null, Ids(list))],
            JsonArray list => list.Select(ParseOne).ToList(),
            _ => throw ApiException.BadRequest("'prompt' must be a string, a list of strings or token ids", "prompt"),
        };
    }

    private static CompletionPrompt ParseOne(JsonNode? item) => item switch
    {
        JsonValue value when value.TryGetValue(out string? s) => new CompletionPrompt(s, null),
        JsonArray ids when ids.Count > 0 && ids.All(IsInteger) => new CompletionPrompt(null, Ids(ids)),
        _ => throw ApiException.BadRequest("each prompt must be a string or a non-empty list of token ids", "prompt"),
    };

    private static bool IsInteger(JsonNode? node) => node is JsonValue v && v.TryGetValue(out int _);

    private static int[] Ids(JsonArray list) => list.Select(n => n!.GetValue<int>()).ToArray();

    private static int MaxTokens(JsonObject body) =>
        (int)Math.Min(int.MaxValue, TokenEstimate.MaxCompletionTokens(body) ?? 0);

    /// <summary>BOS + the text's tokens; a text provably over the context is refused before it is tokenised.</summary>
    private static int[] Tokenize(string text, FoundationModel model, int context, int softPromptRows)
    {
        long bytes = Encoding.UTF8.GetByteCount(text);
        long atLeast = 1 + (bytes + model.MaxTokenBytes - 1) / model.MaxTokenBytes;
        if (atLeast + softPromptRows > context)
            throw OverContext(context, $"at least {atLeast}", softPromptRows, 0, "prompt");
        return model.Tokenizer.Encode(text, addBos: true, addEos: false);
    }

    private static void Check(int tokens, int softPromptRows, int maxTokens, int context, string param)
    {
        if (tokens + softPromptRows + maxTokens > context)
            throw OverContext(context, tokens.ToString(CultureInfo.InvariantCulture), softPromptRows, maxTokens, param);
    }

    private static ApiException OverContext(int context, string tokens, int softPromptRows, int maxTokens, string param)
    {
        string completion = maxTokens > 0 ? $" and {maxTokens} completion tokens" : "";
        string soft = softPromptRows > 0 ? $" plus the adapter's {softPromptRows} soft-prompt rows" : "";
        return ApiException.BadRequest(
            $"This model's maximum context length is {context} tokens. However, you requested {tokens} prompt tokens" +
            $"{soft}{completion}. Please reduce the length of the prompt.", param, "context_length_exceeded");
    }
}
