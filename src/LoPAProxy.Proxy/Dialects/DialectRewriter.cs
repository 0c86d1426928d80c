using System.Text.Json.Nodes;
using LoPAProxy.Core.Generation;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Tokenizers;
using LoPAProxy.ModelServer.OpenAi;
using LoPAProxy.Proxy.Configuration;

namespace LoPAProxy.Proxy.Dialects;

/// <summary>What the rewrite added, for the request log.</summary>
public sealed record RewriteResult(int SoftPromptRows, int BytesAdded);

/// <summary>
/// Rewrites an OpenAI request that names an adapter into the backend's dialect (../shared/DESIGN.md §3):
///  • vllm-chat: the m×d soft prompt as a {"type":"prompt_embeds"} content part next to the instance text in the
///    last user message; any literal "&lt;prompt_embeds&gt;" in text is neutralised (vLLM rejects it).
///  • vllm-completions: the whole sequence [Z ; the FM's embedding rows of the prompt tokens] as prompt_embeds
///    (needs the FM's tokenizer and input-embedding table).
/// The "model" field becomes the backend's model name.
/// </summary>
public sealed class DialectRewriter(SoftPromptService softPrompts, LoPAOptions options)
{
    public const string Placeholder = "<prompt_embeds>";
    private readonly Dictionary<string, Lazy<(ITokenizer Tokenizer, float[] Embeddings, int Dim)>> _models = new();

    public RewriteResult RewriteChat(JsonObject body, BackendOptions backend, SoftPromptGenerator generator, SoftPromptTimings timings, CancellationToken cancel)
    {
        if (backend.Dialect != "vllm-chat")
            throw new ApiException(422, $"this route's backend speaks '{backend.Dialect}', which carries soft prompts on /v1/completions only", "model", "dialect_mismatch");
        if (body["messages"] is not JsonArray messages || messages.Count == 0) throw ApiException.BadRequest("'messages' must be a non-empty list", "messages");
        // Neutralise vLLM's placeholder everywhere text appears (a zero-width space breaks the token).
        foreach (JsonNode? m in messages)
        {
            if (m?["content"] is JsonValue v && v.TryGetValue(out string? s)) m["content"] = Neutralise(s);
            else if (m?["content"] is JsonArray parts)
                foreach (JsonNode? p in parts)
                    if (p?["type"]?.GetValue<string>() == "text" && p["text"] is JsonValue tv && tv.TryGetValue(out string? t)) p["text"] = Neutralise(t);
        }
        var userIndexes = messages.Select((m, i) => (m, i)).Where(x => x.m?["role"]?.GetValue<string>() == "user").Select(x => x.i).ToList();
        if (userIndexes.Count == 0) throw ApiException.BadRequest("no user message to take the instance from", "messages", "nothing_to_encode");
        string instance = options.InstanceText == "all-user"
            ? string.Join("\n", userIndexes.Select(i => TextOf(messages[i]!)))
            : TextOf(messages[userIndexes[^1]]!);
        if (string.IsNullOrWhiteSpace(instance) && generator.Adapter.Config.UsesEncoder)
            throw ApiException.BadRequest("the user message has no text to encode", "messages", "nothing_to_encode");
        float[] z = softPrompts.Compute(generator, new[] { instance }, timings, cancel);
        string data = SoftPromptService.Base64(z, generator.Rows, generator.TokenDim, SoftPromptService.WireType(backend.WireDType));
        JsonNode target = messages[userIndexes[^1]]!;
        var parts2 = target["content"] switch
        {
            JsonArray arr => arr,
            JsonValue val when val.TryGetValue(out string? text) => new JsonArray(new JsonObject { ["type"] = "text", ["text"] = text }),
            _ => new JsonArray(),
        };
        target["content"] = null;
        var embeds = new JsonObject { ["type"] = "prompt_embeds", ["data"] = data };
        int firstText = parts2.Select((p, i) => (p, i)).FirstOrDefault(x => x.p?["type"]?.GetValue<string>() == "text", (null, -1)).Item2;
        if (backend.EmbedsPosition == "after") parts2.Add(embeds);
        else parts2.Insert(Math.Max(0, firstText), embeds);
        target["content"] = parts2;
        body["model"] = backend.Model;
        return new RewriteResult(generator.Rows, data.Length);
    }

    public RewriteResult RewriteCompletions(JsonObject body, BackendOptions backend, SoftPromptGenerator generator, SoftPromptTimings timings, CancellationToken cancel)
    {
        if (backend.Dialect == "sglang") return RewriteSglang(body, backend, generator, timings, cancel);
        if (backend.Dialect != "vllm-completions")
            throw new ApiException(422, $"this route's backend speaks '{backend.Dialect}', which carries soft prompts on /v1/chat/completions only", "model", "dialect_mismatch");
        if (body["prompt_embeds"] is not null) throw ApiException.BadRequest("send either an adapter or prompt_embeds, not both", "prompt_embeds");
        string[] prompts = PromptsOf(body);
        int m = generator.Rows, d = generator.TokenDim;
        var embeds = new JsonArray();
        int bytes = 0;
        foreach (float[] rows in FullSequences(backend, generator, prompts, timings, cancel))
        {
            string data = SoftPromptService.Base64(rows, rows.Length / d, d, SoftPromptService.WireType(backend.WireDType));
            embeds.Add(data);
            bytes += data.Length;
        }
        body.Remove("prompt");
        body["prompt_embeds"] = prompts.Length == 1 ? embeds[0]!.DeepClone() : embeds;
        body["model"] = backend.Model;
        return new RewriteResult(m, bytes);
    }

    /// <summary>
    /// sglang: POST /generate with "input_embeds" = [Z ; the FM's embedding rows of BOS + prompt tokens] (a list of
    /// such for several prompts) and the OpenAI sampling fields mapped to "sampling_params". The caller switches the
    /// path to /generate; <see cref="SglangResponse"/> maps the answer back.
    /// </summary>
    private RewriteResult RewriteSglang(JsonObject body, BackendOptions backend, SoftPromptGenerator generator, SoftPromptTimings timings, CancellationToken cancel)
    {
        string[] prompts = PromptsOf(body);
        if (body["n"] is JsonValue nValue && nValue.TryGetValue(out int n) && n > 1) throw ApiException.BadRequest("n > 1 is not supported with an adapter on an SGLang backend", "n");
        int m = generator.Rows, d = generator.TokenDim, bytes = 0;
        var batch = new JsonArray();
        foreach (float[] rows in FullSequences(backend, generator, prompts, timings, cancel))
        {
            var sequence = new JsonArray();
            for (int r = 0; r < rows.Length / d; r++)
            {
                var row = new JsonArray();
                for (int c = 0; c < d; c++) row.Add(rows[r * d + c]);
                sequence.Add(row);
            }
            batch.Add(sequence);
            bytes += rows.Length * 4;
        }
        var sampling = new JsonObject { ["max_new_tokens"] = body["max_tokens"]?.DeepClone() ?? 16 };
        foreach (string key in new[] { "temperature", "top_p", "top_k", "stop", "seed" })
            if (body[key] is { } value) sampling[key == "seed" ? "sampling_seed" : key] = value.DeepClone();
        bool stream = body["stream"] is JsonValue sv && sv.TryGetValue(out bool st) && st;
        foreach (string key in body.Select(kv => kv.Key).ToList()) body.Remove(key);
        body["input_embeds"] = prompts.Length == 1 ? batch[0]!.DeepClone() : batch;
        body["sampling_params"] = sampling;
        body["stream"] = stream;
        return new RewriteResult(m, bytes);
    }

    /// <summary>The completions "prompt" field as one or more non-empty strings (400 otherwise).</summary>
    private static string[] PromptsOf(JsonObject body)
    {
        string[] prompts = body["prompt"] switch
        {
            JsonValue v when v.TryGetValue(out string? s) => new[] { s },
            JsonArray a when a.Count > 0 && a.All(n => n is JsonValue nv && nv.TryGetValue(out string? _)) => a.Select(n => n!.GetValue<string>()).ToArray(),
            null => throw ApiException.BadRequest("'prompt' is required", "prompt", "nothing_to_encode"),
            _ => throw ApiException.BadRequest("with an adapter, 'prompt' must be a string or a list of strings", "prompt"),
        };
        if (prompts.Any(p => p.Length == 0)) throw ApiException.BadRequest("the prompt is empty", "prompt", "nothing_to_encode");
        return prompts;
    }

    /// <summary>
    /// For full-sequence dialects: per prompt, [Z (m×d) ; the FM's embedding rows of BOS + prompt tokens (t×d)],
    /// row-major, (m+t)×d floats.
    /// </summary>
    private float[][] FullSequences(BackendOptions backend, SoftPromptGenerator generator, string[] prompts, SoftPromptTimings timings, CancellationToken cancel)
    {
        var (tokenizer, table, dim) = Model(backend);
        float[] z = softPrompts.Compute(generator, prompts, timings, cancel);
        int m = generator.Rows, d = generator.TokenDim, vocab = table.Length / dim;
        var sequences = new float[prompts.Length][];
        for (int i = 0; i < prompts.Length; i++)
        {
            int[] ids = tokenizer.Encode(prompts[i], addBos: true, addEos: false);
            var rows = new float[(m + ids.Length) * d];
            z.AsSpan(i * m * d, m * d).CopyTo(rows);
            LoPAProxy.Engine.Kernels.Embedding.Gather(table, vocab, dim, ids, rows.AsSpan(m * d));
            sequences[i] = rows;
        }
        return sequences;
    }

    private (ITokenizer Tokenizer, float[] Embeddings, int Dim) Model(BackendOptions backend)
    {
        string path = backend.ModelPath!;
        Lazy<(ITokenizer, float[], int)> lazy;
        lock (_models)
        {
            if (!_models.TryGetValue(path, out lazy!))
                _models[path] = lazy = new Lazy<(ITokenizer, float[], int)>(() =>
                {
                    LlamaModel fm = Directory.Exists(path) ? LlamaModel.FromHuggingFace(path) : LlamaModel.FromLlama2c(Llama2cCheckpoint.Load(path));
                    return (TokenizerFiles.ForModel(path, fm.Config.VocabSize), fm.TokenEmbedding, fm.Config.Dim);
                });
        }
        return lazy.Value;
    }

    private static string Neutralise(string s) => s.Replace(Placeholder, "<prompt_embeds\u200B>", StringComparison.Ordinal);

    private static string TextOf(JsonNode message) => message["content"] switch
    {
        JsonValue v when v.TryGetValue(out string? s) => s,
        JsonArray parts => string.Join("\n", parts.Where(p => p?["type"]?.GetValue<string>() == "text").Select(p => p!["text"]?.GetValue<string>() ?? "")),
        _ => "",
    };
}
