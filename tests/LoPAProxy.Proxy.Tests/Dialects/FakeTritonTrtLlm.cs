using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoPAProxy.ModelServer;
using LoPAProxy.ModelServer.Generation;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.Proxy.Tests.Dialects;

/// <summary>
/// Triton's generate extension in front of TensorRT-LLM's "tensorrt_llm" model, as their documentation describes it:
/// POST /v2/models/&lt;name&gt;/generate (one JSON answer) or /generate_stream (SSE, one event per new token, no
/// [DONE]); the body's keys are the model's input tensors. Prompt tuning: ids ≥ the vocabulary size V index the
/// request's "prompt_embedding_table" [prompt_vocab_size, d], given in the engine's dtype. It really runs
/// stories260K (llama.cpp) on the rows that contract yields: the table's rows for the virtual ids, the model's own
/// embedding rows for the others. The whole answer echoes the input first (exclude_input_in_output false), and
/// the end id is part of the output when generation stopped on it. Two models: "stories260K" (an fp32 engine)
/// and "stories260K-fp16" (its table input is TYPE_FP16: a value that is not exactly an fp16 is refused).
/// </summary>
public static class FakeTritonTrtLlm
{
    private const int Vocab = 512;
    /// <summary>The engine's max_output_len: longer requests are refused, as TensorRT-LLM does.</summary>
    public const int MaxOutputLen = 256;

    public static WebApplication Build(ServedModel model, ConcurrentQueue<string> bodies)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var decoder = new BatchDecoder(model, new ModelServerOptions { ModelPath = model.GgufPath });
        var app = builder.Build();
        app.Lifetime.ApplicationStopped.Register(decoder.Dispose);
        app.MapPost("/v2/models/{name}/generate",
            (HttpContext h, string name) => GenerateAsync(h, name, model, decoder, bodies, stream: false));
        app.MapPost("/v2/models/{name}/generate_stream",
            (HttpContext h, string name) => GenerateAsync(h, name, model, decoder, bodies, stream: true));
        return app;
    }

    private static async Task<IResult> GenerateAsync(HttpContext h, string name, ServedModel model,
        BatchDecoder decoder, ConcurrentQueue<string> bodies, bool stream)
    {
        string raw = await new StreamReader(h.Request.Body).ReadToEndAsync();
        bodies.Enqueue(raw);
        if (name is not ("stories260K" or "stories260K-fp16"))
            return Results.Json(new { error = $"Request for unknown model: '{name}' is not found" }, statusCode: 400);
        JsonNode body = JsonNode.Parse(raw)!;
        int[] ids = body["input_ids"]!.AsArray().Select(v => (int)v!).ToArray();
        if ((int?)body["input_lengths"] != ids.Length)
            return Error("input_lengths does not match input_ids");
        int promptVocab = (int?)body["prompt_vocab_size"] ?? 0;
        JsonArray table = body["prompt_embedding_table"]?.AsArray() ?? new JsonArray();
        if (table.Count != promptVocab) return Error("prompt_embedding_table rows != prompt_vocab_size");
        float[] tableRows = table.SelectMany(r => r!.AsArray().Select(v => (float)(double)v!)).ToArray();
        if (tableRows.Length != promptVocab * model.HiddenSize) return Error("table width != hidden size");
        if (name.EndsWith("-fp16", StringComparison.Ordinal) && tableRows.Any(v => (float)(Half)v != v))
            return Error("prompt_embedding_table: a value is not representable in TYPE_FP16");
        if (ids.Any(id => id < 0 || id >= Vocab + promptVocab)) return Error("input id out of range");
        float[] rows = ids.SelectMany(id => id < Vocab ? ProxyFixture.EmbeddingRows([id])
            : tableRows.AsSpan((id - Vocab) * model.HiddenSize, model.HiddenSize).ToArray()).ToArray();
        int maxNew = (int?)body["request_output_len"] ?? 16;
        if (maxNew > MaxOutputLen) return Error($"request_output_len {maxNew} exceeds max_output_len {MaxOutputLen}");
        bool greedy = (int?)body["runtime_top_k"] == 1;
        float temperature = greedy ? 0 : (float?)(double?)body["temperature"] ?? 1f;
        var sampling = new SamplingSettings(temperature, 1, 0, (uint)((ulong?)body["random_seed"] ?? 0));
        var prompt = new PromptInput([PromptPiece.OfRows(rows, ids.Length)]);
        GenerationHandle generation = decoder.Start(prompt, maxNew, sampling, h.RequestAborted);
        var output = new List<int>();
        if (stream)
        {
            h.Response.ContentType = "text/event-stream; charset=utf-8";
            await foreach (SampledToken sampled in generation.Tokens.ReadAllAsync(h.RequestAborted))
            {
                output.Add(sampled.Token);
                await WriteEventAsync(h, name, [sampled.Token]);
            }
            if (generation.Finish == FinishReason.Stop) await WriteEventAsync(h, name, [(int)body["end_id"]!]);
            return Results.Empty;
        }
        await foreach (SampledToken sampled in generation.Tokens.ReadAllAsync(h.RequestAborted))
            output.Add(sampled.Token);
        if (generation.Finish == FinishReason.Stop) output.Add((int)body["end_id"]!);
        int[] sequence = ids.Concat(output).ToArray();
        return Results.Json(new
        {
            model_name = name, model_version = "1", output_ids = new[] { sequence },
            sequence_length = new[] { sequence.Length },
        });
    }

    private static IResult Error(string message) => Results.Json(new { error = message }, statusCode: 400);

    private static async Task WriteEventAsync(HttpContext h, string name, int[] ids)
    {
        string json = JsonSerializer.Serialize(new
        {
            model_name = name, model_version = "1", output_ids = new[] { ids }, sequence_length = new[] { ids.Length },
        });
        await h.Response.WriteAsync("data: " + json + "\n\n");
        await h.Response.Body.FlushAsync();
    }
}
