using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoPAProxy.Proxy.Usage;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Transforms;

namespace LoPAProxy.Proxy.Dialects;

/// <summary>Marks a request the sglang dialect rewrote to /generate: its answer must be mapped back to OpenAI's shape.</summary>
public sealed record SglangRequest(string Model, bool Stream, int Prompts);

/// <summary>
/// Maps SGLang's native /generate answers back to OpenAI completions: {text, meta_info} (or a list of them) becomes
/// a text_completion with usage; a stream of cumulative-text events becomes OpenAI chunks carrying deltas, then
/// data: [DONE] (after a usage chunk when the client asked for one). Usage, from meta_info, goes to the request's
/// <see cref="AnswerMeter"/>. Upstream errors become OpenAI error JSON with the upstream status.
/// </summary>
public static class SglangResponse
{
    public static async ValueTask TransformAsync(ResponseTransformContext context)
    {
        HttpContext http = context.HttpContext;
        if (http.Features.Get<SglangRequest>() is not { } request || context.ProxyResponse is null) return;
        context.SuppressResponseBody = true;
        HttpResponse response = http.Response;
        response.Headers.ContentLength = null;
        var upstream = await context.ProxyResponse.Content.ReadAsStreamAsync(http.RequestAborted);
        if (!context.ProxyResponse.IsSuccessStatusCode)
        {
            string text = await new StreamReader(upstream).ReadToEndAsync(http.RequestAborted);
            await OpenAi.ApiException.WriteAsync(response, (int)context.ProxyResponse.StatusCode, $"SGLang: {text}",
                "server_error", null, "backend_error");
            return;
        }
        AnswerMeter meter = http.Features.Get<AnswerMeter>() ?? new AnswerMeter();
        string id = "cmpl-" + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (!request.Stream)
        {
            JsonNode? answer = await JsonNode.ParseAsync(upstream,
                documentOptions: Pipeline.JsonBodies.Strict, cancellationToken: http.RequestAborted);
            JsonNode?[] items = answer is JsonArray list ? list.ToArray() : new[] { answer };
            int prompt = 0, completion = 0;
            var choices = new JsonArray();
            for (int i = 0; i < items.Length; i++)
            {
                JsonNode? meta = items[i]?["meta_info"];
                prompt += (int?)meta?["prompt_tokens"] ?? 0;
                completion += (int?)meta?["completion_tokens"] ?? 0;
                choices.Add(new JsonObject { ["index"] = i, ["text"] = (string?)items[i]?["text"] ?? "", ["logprobs"] = null, ["finish_reason"] = Finish(meta) ?? "stop" });
            }
            meter.PromptTokens = prompt;
            meter.CompletionTokens = completion;
            var body = new JsonObject
            {
                ["id"] = id, ["object"] = "text_completion", ["created"] = created, ["model"] = request.Model, ["choices"] = choices,
                ["usage"] = new JsonObject { ["prompt_tokens"] = prompt, ["completion_tokens"] = completion, ["total_tokens"] = prompt + completion },
            };
            response.ContentType = "application/json";
            byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(body, Pipeline.JsonBodies.Outgoing);
            await response.Body.WriteAsync(bytes, http.RequestAborted);
            return;
        }
        response.ContentType = "text/event-stream";
        var sent = new Dictionary<int, int>();
        var usage = new Dictionary<int, (long Prompt, long Completion)>();
        using var reader = new StreamReader(upstream, Encoding.UTF8);
        while (await reader.ReadLineAsync(http.RequestAborted) is { } line)
        {
            if (!line.StartsWith("data:", StringComparison.Ordinal)) continue;
            string data = line[5..].Trim();
            if (data == "[DONE]") break;
            JsonNode? ev = JsonNode.Parse(data, documentOptions: Pipeline.JsonBodies.Strict);
            int index = (int?)ev?["index"] ?? 0;
            string text = (string?)ev?["text"] ?? "";
            int already = sent.GetValueOrDefault(index);
            string delta = text.Length > already ? text[already..] : "";
            sent[index] = Math.Max(already, text.Length);
            string? finish = Finish(ev?["meta_info"]);
            usage[index] = ((long?)ev?["meta_info"]?["prompt_tokens"] ?? 0,
                (long?)ev?["meta_info"]?["completion_tokens"] ?? 0);
            // Kept current at every event, so a stream cut short is still charged what it produced.
            meter.Events++;
            meter.PromptTokens = usage.Values.Sum(u => u.Prompt);
            meter.CompletionTokens = usage.Values.Sum(u => u.Completion);
            var chunk = new JsonObject
            {
                ["id"] = id, ["object"] = "text_completion", ["created"] = created, ["model"] = request.Model,
                ["choices"] = new JsonArray(new JsonObject { ["index"] = index, ["text"] = delta, ["logprobs"] = null, ["finish_reason"] = finish }),
            };
            string sse = "data: " + chunk.ToJsonString(Pipeline.JsonBodies.Outgoing) + "\n\n";
            await response.WriteAsync(sse, http.RequestAborted);
            await response.Body.FlushAsync(http.RequestAborted);
        }
        if (meter.ClientAskedUsage)
            await response.WriteAsync("data: " + UsageChunk(id, created, request.Model, meter) + "\n\n",
                http.RequestAborted);
        await response.WriteAsync("data: [DONE]\n\n", http.RequestAborted);
        await response.Body.FlushAsync(http.RequestAborted);
    }

    /// <summary>OpenAI's last chunk when stream_options.include_usage is set: no choices, the usage.</summary>
    private static string UsageChunk(string id, long created, string model, AnswerMeter meter) => new JsonObject
    {
        ["id"] = id, ["object"] = "text_completion", ["created"] = created, ["model"] = model,
        ["choices"] = new JsonArray(),
        ["usage"] = new JsonObject
        {
            ["prompt_tokens"] = meter.PromptTokens, ["completion_tokens"] = meter.CompletionTokens,
            ["total_tokens"] = meter.PromptTokens + meter.CompletionTokens,
        },
    }.ToJsonString();

    /// <summary>SGLang's finish_reason {"type": "length" | "stop" | "abort", …} → OpenAI's; null while running.</summary>
    private static string? Finish(JsonNode? meta) => meta?["finish_reason"] switch
    {
        null => null,
        JsonObject o => (string?)o["type"] == "length" ? "length" : "stop",
        JsonValue v when v.TryGetValue(out string? s) => s == "length" ? "length" : "stop",
        _ => null,
    };
}
