using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoPAProxy.ModelServer;
using LoPAProxy.ModelServer.Generation;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace LoPAProxy.Proxy.Tests;

/// <summary>
/// SGLang's native /generate as its docs describe it (input_embeds, sampling_params, stream; {text, meta_info} or
/// cumulative-text SSE events), answered by really running stories260K (llama.cpp) on the received embeddings.
/// </summary>
public static class FakeSglang
{
    public static WebApplication Build(ServedModel model, ConcurrentQueue<string> bodies)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        // Made before the first request: the proxy under test gives backends 2 s.
        var decoder = new BatchDecoder(model, new ModelServerOptions { ModelPath = model.GgufPath });
        builder.Services.AddSingleton(decoder);
        var app = builder.Build();
        app.Lifetime.ApplicationStopped.Register(decoder.Dispose);
        app.MapPost("/generate", (HttpContext h, BatchDecoder decoder) => GenerateAsync(h, model, decoder, bodies));
        return app;
    }

    private static async Task<IResult> GenerateAsync(HttpContext h, ServedModel model, BatchDecoder decoder,
        ConcurrentQueue<string> bodies)
    {
        string raw = await new StreamReader(h.Request.Body).ReadToEndAsync();
        bodies.Enqueue(raw);
        JsonNode body = JsonNode.Parse(raw)!;
        if (body["input_embeds"] is not JsonArray embeds || embeds.Count == 0 || embeds[0] is not JsonArray first
            || first[0] is not JsonValue)
        {
            return Results.BadRequest(new { error = "input_embeds must be [[d floats], ...]" });
        }

        if (first.Count != model.HiddenSize)
            return Results.BadRequest(new { error = $"hidden size {first.Count} != {model.HiddenSize}" });
        float[] rows = embeds.SelectMany(r => r!.AsArray().Select(v => (float)v!.GetValue<double>())).ToArray();
        int maxNew = (int?)body["sampling_params"]?["max_new_tokens"] ?? 128;
        float temperature = (float?)body["sampling_params"]?["temperature"] ?? 1f;
        var prompt = new PromptInput(new[] { PromptPiece.OfRows(rows, embeds.Count) });
        var sampling = new SamplingSettings(temperature, 1, 0, 1);
        var texts = new List<string>();
        string text = "";
        int tokens = 0;
        FinishReason finish = FinishReason.Length;
        await foreach (TextDelta d in ChoiceRunner.RunAsync(model, decoder, prompt, maxNew, sampling,
                           Array.Empty<string>(), h.RequestAborted))
        {
            text += d.Text;
            texts.Add(text);
            tokens = d.CompletionTokens;
            finish = d.Finish ?? finish;
        }
        object Meta(bool done) => new
        {
            id = "sg1", prompt_tokens = embeds.Count, completion_tokens = tokens,
            finish_reason = done ? new { type = finish == FinishReason.Length ? "length" : "stop" } : null,
        };
        if (body["stream"]?.GetValue<bool>() != true) return Results.Json(new { text, meta_info = Meta(true) });
        h.Response.ContentType = "text/event-stream";
        for (int i = 0; i < texts.Count; i++)
        {
            bool last = i == texts.Count - 1;
            string json = JsonSerializer.Serialize(new { text = texts[i], meta_info = Meta(last) });
            await h.Response.WriteAsync("data: " + json + "\n\n");
            await h.Response.Body.FlushAsync();
        }
        await h.Response.WriteAsync("data: [DONE]\n\n");
        return Results.Empty;
    }
}
