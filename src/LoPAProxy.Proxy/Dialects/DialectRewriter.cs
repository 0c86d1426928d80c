using System.Text.Json.Nodes;
using LoPAProxy.Core.Generation;
using LoPAProxy.Engine.Formats.Torch;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Limits;

namespace LoPAProxy.Proxy.Dialects;

/// <summary>
/// What the rewrite added, for the request log; <paramref name="Embedded"/>: streams whose text takes the place of
/// placeholder strings in the body when it is sent (<see cref="StreamedBody"/>).
/// </summary>
public sealed record RewriteResult(int SoftPromptRows, long BytesAdded,
    IReadOnlyList<(string Placeholder, Stream Text)>? Embedded = null);

/// <summary>
/// Rewrites an OpenAI request that names an adapter into the backend's dialect (../shared/DESIGN.md §3):
///  • vllm-chat: the m×d soft prompt as a {"type":"prompt_embeds"} content part next to the instance text in the
///    last user message; any literal "&lt;prompt_embeds&gt;" in text is neutralised (vLLM rejects it).
///  • vllm-completions: the whole sequence [Z ; the FM's embedding rows of the prompt tokens] as prompt_embeds
///    (needs the FM's tokenizer and input-embedding table).
///  • sglang: the same sequences as "input_embeds" on /generate.
/// The "model" field becomes the backend's model name. Prompts arrive measured by <see cref="PromptBudget"/>.
/// </summary>
public sealed class DialectRewriter(SoftPromptService softPrompts, PromptBudget budget, LoPAOptions options)
{
    public const string Placeholder = "<prompt_embeds>";

    public async Task<RewriteResult> RewriteChatAsync(JsonObject body, BackendOptions backend,
        SoftPromptGenerator generator,
        SoftPromptTimings timings, CancellationToken cancel)
    {
        if (backend.Dialect != "vllm-chat")
            throw new ApiException(422,
                $"this route's backend speaks '{backend.Dialect}', which carries soft prompts on /v1/completions only",
                "model", "dialect_mismatch");
        if (body["messages"] is not JsonArray messages || messages.Count == 0)
            throw ApiException.BadRequest("'messages' must be a non-empty list", "messages");
        foreach (JsonNode? message in messages) NeutraliseText(message);
        List<int> users = UserMessageIndexes(messages);
        if (users.Count == 0)
            throw ApiException.BadRequest("no user message to take the instance from", "messages", "nothing_to_encode");
        string instance = options.InstanceText == "all-user"
            ? string.Join("\n", users.Select(i => MessageText.Of(messages[i])))
            : MessageText.Of(messages[users[^1]]);
        if (string.IsNullOrWhiteSpace(instance) && generator.Adapter.Config.UsesEncoder)
            throw ApiException.BadRequest("the user message has no text to encode", "messages", "nothing_to_encode");
        float[] z = await softPrompts.ComputeAsync(generator, [instance], timings, cancel);
        string data = SoftPromptService.Base64(z, generator.Rows, generator.TokenDim,
            SoftPromptService.WireType(backend.WireDType));
        InsertEmbedsPart(messages[users[^1]]!, data, backend.EmbedsPosition);
        body["model"] = backend.Model;
        return new RewriteResult(generator.Rows, data.Length);
    }

    public async Task<RewriteResult> RewriteCompletionsAsync(JsonObject body, IReadOnlyList<CompletionPrompt> prompts,
        BackendOptions backend, SoftPromptGenerator generator, SoftPromptTimings timings, CancellationToken cancel)
    {
        if (backend.Dialect == "sglang") return await RewriteSglangAsync(body, prompts, backend, generator, timings,
            cancel);
        if (backend.Dialect != "vllm-completions")
            throw new ApiException(422,
                $"this route's backend speaks '{backend.Dialect}', which carries soft prompts on /v1/chat/completions only",
                "model", "dialect_mismatch");
        if (body["prompt_embeds"] is not null)
            throw ApiException.BadRequest("send either an adapter or prompt_embeds, not both", "prompt_embeds");
        FullSequences sequences = await FullSequencesAsync(backend, generator, prompts, timings, cancel);
        DType wire = SoftPromptService.WireType(backend.WireDType);
        // Each sequence's base64 is produced row by row while the body is sent; the body holds a placeholder no
        // client text can forge (a fresh nonce) until then.
        string nonce = Guid.NewGuid().ToString("N");
        var embedded = new List<(string Placeholder, Stream Text)>();
        var embeds = new JsonArray();
        for (int i = 0; i < sequences.Count; i++)
        {
            string placeholder = $"lopa-embeds-{nonce}-{i}";
            int sequence = i;
            embedded.Add((placeholder, new TorchTensorStream(sequences.Rows(i), sequences.Dim, wire,
                (row, values) => sequences.Fill(sequence, row, values))));
            embeds.Add(placeholder);
        }
        body.Remove("prompt");
        body["prompt_embeds"] = prompts.Count == 1 ? embeds[0]!.DeepClone() : embeds;
        body["model"] = backend.Model;
        return new RewriteResult(generator.Rows, embedded.Sum(e => e.Text.Length), embedded);
    }

    /// <summary>
    /// sglang: POST /generate with "input_embeds" = [Z ; the FM's embedding rows of BOS + prompt tokens] (a list of
    /// such for several prompts) and the OpenAI sampling fields mapped to "sampling_params". The caller switches the
    /// path to /generate; <see cref="SglangResponse"/> maps the answer back.
    /// </summary>
    private async Task<RewriteResult> RewriteSglangAsync(JsonObject body, IReadOnlyList<CompletionPrompt> prompts,
        BackendOptions backend,
        SoftPromptGenerator generator, SoftPromptTimings timings, CancellationToken cancel)
    {
        if (body["n"] is JsonValue nValue && nValue.TryGetValue(out int n) && n > 1)
            throw ApiException.BadRequest("n > 1 is not supported with an adapter on an SGLang backend", "n");
        int d = generator.TokenDim, bytes = 0;
        var sequences = new List<JsonNode>();
        FullSequences full = await FullSequencesAsync(backend, generator, prompts, timings, cancel);
        for (int i = 0; i < full.Count; i++)
        {
            float[] rows = full.Materialise(i);
            sequences.Add(RowsAsJson(rows, d));
            bytes += rows.Length * sizeof(float);
        }
        long maxNewTokens = Limits.TokenEstimate.MaxCompletionTokens(body) ?? 16;
        var sampling = new JsonObject { ["max_new_tokens"] = maxNewTokens };
        foreach (string key in new[] { "temperature", "top_p", "top_k", "stop", "seed" })
            if (body[key] is { } value) sampling[key == "seed" ? "sampling_seed" : key] = value.DeepClone();
        bool stream = body["stream"] is JsonValue sv && sv.TryGetValue(out bool st) && st;
        body.Clear();
        body["input_embeds"] = sequences.Count == 1 ? sequences[0] : new JsonArray(sequences.ToArray<JsonNode?>());
        body["sampling_params"] = sampling;
        body["stream"] = stream;
        return new RewriteResult(generator.Rows, bytes);
    }

    /// <summary>
    /// [[d floats] × rows] as a JsonNode backed by its UTF-8 text: written once with Utf8JsonWriter and parsed lazily,
    /// so no node per value is ever built (a JsonValue per float costs ~50 bytes; this ~20).
    /// </summary>
    private static JsonNode RowsAsJson(float[] rows, int d)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(rows.Length * 12 + 16);
        using (var writer = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            for (int r = 0; r < rows.Length / d; r++)
            {
                writer.WriteStartArray();
                foreach (float v in rows.AsSpan(r * d, d)) writer.WriteNumberValue(v);
                writer.WriteEndArray();
            }
            writer.WriteEndArray();
        }
        return JsonNode.Parse(buffer.WrittenSpan)!;
    }

    /// <summary>
    /// For full-sequence dialects: per prompt, [Z (m×d) ; the FM's embedding rows of BOS + prompt tokens (t×d)],
    /// (m+t)×d floats, each row taken when it is asked for — from Z or the FM's table — so the whole sequence need
    /// never exist at once.
    /// </summary>
    private sealed class FullSequences(float[] z, int[][] ids, FoundationModel model, int m, int d)
    {
        public int Count => ids.Length;
        public int Dim => d;

        public int Rows(int sequence) => m + ids[sequence].Length;

        /// <summary>Row <paramref name="row"/> of sequence <paramref name="sequence"/> into
        /// <paramref name="destination"/> [d].</summary>
        public void Fill(int sequence, int row, Span<float> destination)
        {
            if (row < m) z.AsSpan((sequence * m + row) * d, d).CopyTo(destination);
            else Engine.Kernels.Embedding.Gather(model.Embeddings, model.VocabSize, model.Dim,
                ids[sequence].AsSpan(row - m, 1), destination);
        }

        /// <summary>The whole sequence, row-major (SGLang's numbers are written from it).</summary>
        public float[] Materialise(int sequence)
        {
            var rows = new float[Rows(sequence) * d];
            for (int r = 0; r < Rows(sequence); r++) Fill(sequence, r, rows.AsSpan(r * d, d));
            return rows;
        }
    }

    /// <summary>The prompts' sequences: tokenised, the total checked against the per-request budget, then Z
    /// computed.</summary>
    private async Task<FullSequences> FullSequencesAsync(BackendOptions backend, SoftPromptGenerator generator,
        IReadOnlyList<CompletionPrompt> prompts, SoftPromptTimings timings, CancellationToken cancel)
    {
        FoundationModel model = budget.ModelOf(backend)
            ?? throw new InvalidOperationException($"the {backend.Dialect} dialect needs ModelPath");
        if (prompts.Any(p => p.Text is null))
            throw ApiException.BadRequest("with an adapter, 'prompt' must be a string or a list of strings", "prompt");
        if (prompts.Any(p => p.Text!.Length == 0))
            throw ApiException.BadRequest("the prompt is empty", "prompt", "nothing_to_encode");
        int m = generator.Rows, d = generator.TokenDim;
        int[][] ids = prompts.Select(p => p.Ids ?? model.Tokenizer.Encode(p.Text!, addBos: true,
            addEos: false)).ToArray();
        budget.CheckEmbeddingValues(ids.Sum(t => (long)(m + t.Length) * d));
        float[] z = await softPrompts.ComputeAsync(generator, prompts.Select(p => p.Text!).ToArray(), timings, cancel);
        return new FullSequences(z, ids, model, m, d);
    }

    /// <summary>Breaks vLLM's placeholder wherever text appears (a zero-width space splits the token).</summary>
    private static void NeutraliseText(JsonNode? message)
    {
        if (message is not JsonObject m) return;
        if (JsonAccess.String(m, "content") is { } s)
        {
            m["content"] = Neutralise(s);
            return;
        }
        if (m["content"] is not JsonArray parts) return;
        foreach (JsonNode? part in parts)
        {
            if (MessageText.IsText(part) && JsonAccess.String(part, "text") is { } t) part!["text"] = Neutralise(t);
        }
    }

    private static List<int> UserMessageIndexes(JsonArray messages)
    {
        var users = new List<int>();
        for (int i = 0; i < messages.Count; i++)
        {
            if (JsonAccess.String(messages[i], "role") == "user") users.Add(i);
        }
        return users;
    }

    /// <summary>Puts the prompt_embeds part before the message's first text part (or after all parts).</summary>
    private static void InsertEmbedsPart(JsonNode message, string data, string position)
    {
        if (message is not JsonObject)
            throw ApiException.BadRequest("each message must be an object", "messages");
        JsonArray parts = message["content"] switch
        {
            JsonArray array => array,
            JsonValue value when value.TryGetValue(out string? text) =>
                new JsonArray(new JsonObject { ["type"] = "text", ["text"] = text }),
            _ => new JsonArray(),
        };
        message["content"] = null;
        var embeds = new JsonObject { ["type"] = "prompt_embeds", ["data"] = data };
        int firstText = -1;
        for (int i = 0; i < parts.Count && firstText < 0; i++)
            if (MessageText.IsText(parts[i])) firstText = i;
        if (position == "after") parts.Add(embeds);
        else parts.Insert(Math.Max(0, firstText), embeds);
        message["content"] = parts;
    }

    private static string Neutralise(string s) => s.Replace(Placeholder, "<prompt_embeds\u200B>",
        StringComparison.Ordinal);
}
