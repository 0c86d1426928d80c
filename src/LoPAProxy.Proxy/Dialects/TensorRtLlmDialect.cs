using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.Engine.Tokenizers;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Models;
using LoPAProxy.Proxy.Requests;
using LoPAProxy.Proxy.SoftPrompts;
using Yarp.ReverseProxy.Transforms;

namespace LoPAProxy.Proxy.Dialects;

/// <summary>
/// trtllm: a TensorRT-LLM engine behind Triton's generate endpoint, soft prompt as prompt tuning. TensorRT-LLM
/// looks ids ≥ vocab_size up in the request's own table: "input_ids" = [V … V+m−1, BOS, prompt tokens] with V the
/// FM's vocabulary size, "prompt_embedding_table" = Z [m, d] as numbers in the wire dtype (set WireDType to the
/// engine's: fp16 or bf16, fp32 for an fp32 engine), "prompt_vocab_size" = m. Only m×d travels; the engine embeds
/// the prompt's own tokens. Sent to POST /v2/models/&lt;Model&gt;/generate (generate_stream for a stream) — Model
/// is the Triton model that runs the engine (the "tensorrt_llm" model of tensorrtllm_backend, named after the FM),
/// one prompt per request. Its "output_ids" (with or without the input echoed) are decoded here with the FM's
/// tokenizer into OpenAI's text_completion (<see cref="Answer"/>).
/// </summary>
public sealed class TensorRtLlmDialect(SoftPromptService softPrompts, PromptBudget budget)
    : IBackendDialect, IDialectTraits
{
    public static string Name => "trtllm";
    public static bool NeedsModel => true;
    public EndpointKind SoftPromptEndpoint => EndpointKind.Completions;
    /// <summary>An estimate: Z's JSON numbers written, parsed lazily and written again (only m × d values).</summary>
    public double RewriteBytesPerValue => 40;

    /// <summary>What this dialect maps (stop strings are not: the engine's stop-word lists take token ids).</summary>
    private static readonly CarriedFields Carried = new(Name, "max_tokens", "max_completion_tokens", "temperature",
        "top_p", "top_k", "seed", "presence_penalty", "frequency_penalty", "repetition_penalty");

    public async Task<RewriteResult> RewriteAsync(DialectRequest request, CancellationToken cancel)
    {
        JsonObject body = request.Body;
        RefuseUncarried(body, request.Prompts!.Count);
        FullSequences full = await FullSequences.PrepareAsync(request, budget, softPrompts, rowsTravel: false,
            RewriteBytesPerValue, cancel);
        FoundationModel model = full.Model;
        int m = full.SoftPromptRows;
        int[] inputIds = Enumerable.Range(model.VocabSize, m).Concat(full.Ids[0]).ToArray();
        long maxTokens = TokenEstimate.MaxCompletionTokens(body) ?? 16;
        bool stream = JsonAccess.Flag(body, "stream");
        DType wire = SoftPromptService.WireType(request.Backend.WireDType);
        JsonNode table = TableAsJson(full.SoftPrompts[..(m * full.Dim)], full.Dim, wire);
        JsonObject sampling = Sampling(body);
        body.Clear();
        body["input_ids"] = new JsonArray(inputIds.Select(id => (JsonNode)id).ToArray());
        body["input_lengths"] = inputIds.Length;
        body["request_output_len"] = maxTokens;
        body["prompt_embedding_table"] = table;
        body["prompt_vocab_size"] = m;
        body["end_id"] = model.Tokenizer.EosId;
        body["pad_id"] = model.Tokenizer.EosId;
        body["streaming"] = stream;
        foreach (var (key, value) in sampling) body[key] = value?.DeepClone();
        string verb = stream ? "generate_stream" : "generate";
        string path = $"/v2/models/{Uri.EscapeDataString(request.Backend.Model)}/{verb}";
        var answer = new Answer(request.AskedModel, stream, inputIds, model.Tokenizer, maxTokens);
        return new RewriteResult(m, (long)m * full.Dim * sizeof(float), Path: path, Answer: answer);
    }

    private static void RefuseUncarried(JsonObject body, int prompts)
    {
        if (prompts > 1)
        {
            throw ApiException.BadRequest("a TensorRT-LLM backend takes one prompt per request with an adapter",
                "prompt", "unsupported_parameter");
        }

        Carried.Check(body);
    }

    /// <summary>OpenAI sampling fields as the tensorrt_llm model's inputs; temperature 0 is greedy (top-k 1).</summary>
    private static JsonObject Sampling(JsonObject body)
    {
        var sampling = new JsonObject();
        double? temperature = Number(body["temperature"]);
        if (temperature == 0) sampling["runtime_top_k"] = 1;
        else if (temperature is { } t) sampling["temperature"] = t;
        if (Number(body["top_p"]) is { } topP) sampling["runtime_top_p"] = topP;
        if (Number(body["top_k"]) is { } topK && temperature != 0) sampling["runtime_top_k"] = (long)topK;
        if (Number(body["seed"]) is { } seed) sampling["random_seed"] = (ulong)Math.Abs(seed);
        foreach (string penalty in new[] { "presence_penalty", "frequency_penalty", "repetition_penalty" })
            if (Number(body[penalty]) is { } p) sampling[penalty] = p;
        return sampling;
    }

    private static double? Number(JsonNode? node) =>
        node is JsonValue v && v.TryGetValue(out double x) ? x : null;

    /// <summary>Z [m, d] as nested JSON numbers, each rounded to the wire dtype first so that the engine's
    /// conversion loses nothing: the table it uses is the one computed here.</summary>
    private static JsonNode TableAsJson(ReadOnlySpan<float> z, int d, DType wire)
    {
        var buffer = new ArrayBufferWriter<byte>(z.Length * 12 + 16);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            for (int r = 0; r < z.Length / d; r++)
            {
                writer.WriteStartArray();
                foreach (float v in z.Slice(r * d, d)) writer.WriteNumberValue(InWireType(v, wire));
                writer.WriteEndArray();
            }
            writer.WriteEndArray();
        }
        return JsonNode.Parse(buffer.WrittenSpan)!;
    }

    private static float InWireType(float value, DType wire) => wire switch
    {
        DType.F16 => (float)(Half)value,
        DType.BF16 => FloatConvert.FromBFloat16Bits(FloatConvert.ToBFloat16Bits(value)),
        _ => value,
    };

    /// <summary>
    /// Triton's answer as OpenAI's completion. Whole: {"output_ids": [[…]] or […], …} — the input echoed first
    /// when the model is configured so (exclude_input_in_output false), which is cut off. Stream: SSE events each
    /// carrying the new ids, or {"error": "…"} (Triton reports a failure after the first event that way).
    /// </summary>
    private sealed class Answer(string model, bool stream, int[] inputIds, ITokenizer tokenizer, long maxTokens)
        : IDialectAnswer
    {
        private const string Backend = "TensorRT-LLM";

        public async Task WriteAsync(ResponseTransformContext context)
        {
            var answer = new NativeCompletion(context, model);
            if (!await answer.BeginAsync(Backend, stream)) return;
            answer.Meter.PromptTokens = inputIds.Length;
            Stream upstream = await answer.ReadUpstreamAsync();
            if (stream) await RelayStreamAsync(answer, upstream);
            else await RelayWholeAsync(answer, upstream);
        }

        private async Task RelayWholeAsync(NativeCompletion answer, Stream upstream)
        {
            JsonNode? parsed = await JsonNode.ParseAsync(upstream, documentOptions: JsonBodies.Strict,
                cancellationToken: answer.Aborted);
            List<int> ids = OutputIds(parsed);
            if (ids.Count >= inputIds.Length && ids.Take(inputIds.Length).SequenceEqual(inputIds))
                ids.RemoveRange(0, inputIds.Length);
            var text = new TokenText(tokenizer, inputIds[^1]);
            string output = text.Add(ids) + text.Flush();
            var choices = new JsonArray(NativeCompletion.Choice(0, output, Finish(ids)));
            await answer.WriteWholeAsync(choices, inputIds.Length, ids.Count);
        }

        private async Task RelayStreamAsync(NativeCompletion answer, Stream upstream)
        {
            var text = new TokenText(tokenizer, inputIds[^1]);
            var all = new List<int>();
            using var reader = new StreamReader(upstream, Encoding.UTF8);
            while (await reader.ReadLineAsync(answer.Aborted) is { } line)
            {
                if (!line.StartsWith("data:", StringComparison.Ordinal)) continue;
                JsonNode? ev = JsonNode.Parse(line.AsSpan(5).Trim().ToString(), documentOptions: JsonBodies.Strict);
                if (JsonAccess.String(ev, "error") is { } error)
                {
                    await answer.WriteStreamErrorAsync(Backend, error);
                    return;
                }
                List<int> ids = OutputIds(ev);
                all.AddRange(ids);
                // Kept current at every event, so a stream cut short is still charged what it produced.
                answer.Meter.Events++;
                answer.Meter.CompletionTokens = all.Count;
                string delta = text.Add(ids);
                if (delta.Length > 0) await answer.WriteChunkAsync(0, delta, null);
            }
            await answer.WriteChunkAsync(0, text.Flush(), Finish(all));
            await answer.EndStreamAsync();
        }

        private string Finish(List<int> ids) =>
            ids.Count < maxTokens || ids.Contains(tokenizer.EosId) ? "stop" : "length";

        /// <summary>Every id in "output_ids", whatever its nesting (batch and beam dimensions of 1).</summary>
        private static List<int> OutputIds(JsonNode? answer)
        {
            var ids = new List<int>();
            Collect(JsonAccess.Field(answer, "output_ids"), ids);
            return ids;
        }

        private static void Collect(JsonNode? node, List<int> ids)
        {
            if (node is JsonValue v && v.TryGetValue(out int id)) ids.Add(id);
            else if (node is JsonArray list)
                foreach (JsonNode? item in list) Collect(item, ids);
        }
    }

    /// <summary>Token ids to text as they come: pieces after the last one seen, UTF-8 kept whole across
    /// tokens, BOS and EOS print nothing.</summary>
    private sealed class TokenText(ITokenizer tokenizer, int previous)
    {
        private readonly Decoder _utf8 = Encoding.UTF8.GetDecoder();
        private int _previous = previous;

        public string Add(IEnumerable<int> ids)
        {
            var text = new StringBuilder();
            foreach (int id in ids)
            {
                if (id != tokenizer.BosId && id != tokenizer.EosId && id >= 0 && id < tokenizer.VocabSize)
                    Append(text, tokenizer.DecodePiece(_previous, id), flush: false);
                _previous = id;
            }
            return text.ToString();
        }

        public string Flush()
        {
            var text = new StringBuilder();
            Append(text, [], flush: true);
            return text.ToString();
        }

        private void Append(StringBuilder text, ReadOnlySpan<byte> bytes, bool flush)
        {
            Span<char> chars = stackalloc char[_utf8.GetCharCount(bytes, flush)];
            int n = _utf8.GetChars(bytes, chars, flush);
            text.Append(chars[..n]);
        }
    }
}
