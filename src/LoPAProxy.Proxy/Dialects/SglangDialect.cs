using System.Text;
using System.Text.Json.Nodes;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Requests;
using LoPAProxy.Proxy.SoftPrompts;
using Yarp.ReverseProxy.Transforms;

namespace LoPAProxy.Proxy.Dialects;

/// <summary>
/// sglang: POST /generate with "input_embeds" = [Z ; the FM's embedding rows of BOS + prompt tokens] (a list of
/// such for several prompts; their numbers written while the body is sent, <see cref="JsonRowsStream"/>) and the
/// OpenAI sampling fields mapped to "sampling_params". SGLang's answer — {text,
/// meta_info} (or a list of them), or a stream of cumulative-text events — is mapped back to OpenAI's
/// text_completion (<see cref="Answer"/>).
/// </summary>
public sealed class SglangDialect(SoftPromptService softPrompts, PromptBudget budget) : IBackendDialect, IDialectTraits
{
    public static string Name => "sglang";
    public static bool NeedsModel => true;
    public EndpointKind SoftPromptEndpoint => EndpointKind.Completions;
    /// <summary>10.0 measured at d = 64 (was 61.4 before the numbers were streamed).</summary>
    public double RewriteBytesPerValue => 12;

    /// <summary>OpenAI's names → sampling_params' names.</summary>
    private static readonly Dictionary<string, string> SamplingFields = new(StringComparer.Ordinal)
    {
        ["temperature"] = "temperature", ["top_p"] = "top_p", ["top_k"] = "top_k", ["min_p"] = "min_p",
        ["stop"] = "stop", ["seed"] = "sampling_seed", ["presence_penalty"] = "presence_penalty",
        ["frequency_penalty"] = "frequency_penalty", ["repetition_penalty"] = "repetition_penalty",
    };

    private static readonly CarriedFields Carried = new(Name,
        [.. SamplingFields.Keys, "max_tokens", "max_completion_tokens"]);

    public async Task<RewriteResult> RewriteAsync(DialectRequest request, CancellationToken cancel)
    {
        JsonObject body = request.Body;
        Carried.Check(body);
        FullSequences full = await FullSequences.PrepareAsync(request, budget, softPrompts, rowsTravel: true,
            RewriteBytesPerValue, cancel);
        // Each sequence's numbers are written while the body is sent; a fresh nonce marks their places.
        string nonce = Guid.NewGuid().ToString("N");
        var embedded = new List<EmbeddedText>();
        var sequences = new List<JsonNode>();
        for (int i = 0; i < full.Count; i++)
        {
            string placeholder = $"lopa-embeds-{nonce}-{i}";
            int sequence = i;
            var rows = new JsonRowsStream(full.Rows(i), full.Dim, (row, values) => full.Fill(sequence, row, values),
                row => full.KnownJsonLength(sequence, row));
            embedded.Add(new EmbeddedText(placeholder, rows, IsJsonValue: true));
            sequences.Add(placeholder);
        }
        long maxNewTokens = TokenEstimate.MaxCompletionTokens(body) ?? 16;
        var sampling = new JsonObject { ["max_new_tokens"] = maxNewTokens };
        foreach (var (openAi, sglang) in SamplingFields)
            if (body[openAi] is { } value) sampling[sglang] = value.DeepClone();
        bool stream = JsonAccess.Flag(body, "stream");
        body.Clear();
        body["input_embeds"] = sequences.Count == 1 ? sequences[0] : new JsonArray(sequences.ToArray<JsonNode?>());
        body["sampling_params"] = sampling;
        body["stream"] = stream;
        return new RewriteResult(full.SoftPromptRows, embedded.Sum(e => e.Text.Length), embedded, "/generate",
            new Answer(request.AskedModel, stream));
    }

    /// <summary>SGLang's /generate answer as OpenAI's completion: usage from meta_info; a stream of cumulative
    /// texts becomes deltas.</summary>
    private sealed class Answer(string model, bool stream) : IDialectAnswer
    {
        public async Task WriteAsync(ResponseTransformContext context)
        {
            var answer = new NativeCompletion(context, model);
            if (!await answer.BeginAsync("SGLang", stream)) return;
            Stream upstream = await answer.ReadUpstreamAsync();
            if (stream) await RelayStreamAsync(answer, upstream);
            else await RelayWholeAsync(answer, upstream);
        }

        private static async Task RelayWholeAsync(NativeCompletion answer, Stream upstream)
        {
            JsonNode? parsed = await JsonNode.ParseAsync(upstream, documentOptions: JsonBodies.Strict,
                cancellationToken: answer.Aborted);
            JsonNode?[] items = parsed is JsonArray list ? list.ToArray() : [parsed];
            long prompt = 0;
            long completion = 0;
            var choices = new JsonArray();
            for (int i = 0; i < items.Length; i++)
            {
                JsonNode? meta = items[i]?["meta_info"];
                prompt += (long?)meta?["prompt_tokens"] ?? 0;
                completion += (long?)meta?["completion_tokens"] ?? 0;
                choices.Add(NativeCompletion.Choice(i, (string?)items[i]?["text"] ?? "", Finish(meta) ?? "stop"));
            }
            await answer.WriteWholeAsync(choices, prompt, completion);
        }

        private static async Task RelayStreamAsync(NativeCompletion answer, Stream upstream)
        {
            var sent = new Dictionary<int, int>();
            var usage = new Dictionary<int, (long Prompt, long Completion)>();
            using var reader = new StreamReader(upstream, Encoding.UTF8);
            while (await reader.ReadLineAsync(answer.Aborted) is { } line)
            {
                if (!line.StartsWith("data:", StringComparison.Ordinal)) continue;
                string data = line[5..].Trim();
                if (data == "[DONE]") break;
                JsonNode? ev = JsonNode.Parse(data, documentOptions: JsonBodies.Strict);
                int index = (int?)ev?["index"] ?? 0;
                string text = (string?)ev?["text"] ?? "";
                int already = sent.GetValueOrDefault(index);
                string delta = text.Length > already ? text[already..] : "";
                sent[index] = Math.Max(already, text.Length);
                JsonNode? meta = ev?["meta_info"];
                usage[index] = ((long?)meta?["prompt_tokens"] ?? 0, (long?)meta?["completion_tokens"] ?? 0);
                // Kept current at every event, so a stream cut short is still charged what it produced.
                answer.Meter.Events++;
                answer.Meter.PromptTokens = usage.Values.Sum(u => u.Prompt);
                answer.Meter.CompletionTokens = usage.Values.Sum(u => u.Completion);
                await answer.WriteChunkAsync(index, delta, Finish(meta));
            }
            await answer.EndStreamAsync();
        }

        /// <summary>SGLang's finish_reason {"type": "length" | "stop" | "abort", …} → OpenAI's; null while
        /// running.</summary>
        private static string? Finish(JsonNode? meta) => meta?["finish_reason"] switch
        {
            null => null,
            JsonObject o => (string?)o["type"] == "length" ? "length" : "stop",
            JsonValue v when v.TryGetValue(out string? s) => s == "length" ? "length" : "stop",
            _ => null,
        };
    }
}
