using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.ModelServer.Generation;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.Proxy.Tests;

/// <summary>
/// SGLang's native /generate as its docs describe it (input_embeds, sampling_params, stream; {text, meta_info} or
/// cumulative-text SSE events), answered by really running stories260K on the received embeddings.
/// </summary>
public static class FakeSglang
{
    public static WebApplication Build(ServedModel model, ConcurrentQueue<string> bodies)
    {
        var b = WebApplication.CreateSlimBuilder();
        b.WebHost.UseUrls("http://127.0.0.1:0");
        var app = b.Build();
        app.MapPost("/generate", async (HttpContext h) =>
        {
            string raw = await new StreamReader(h.Request.Body).ReadToEndAsync();
            bodies.Enqueue(raw);
            JsonNode body = JsonNode.Parse(raw)!;
            if (body["input_embeds"] is not JsonArray embeds || embeds.Count == 0 || embeds[0] is not JsonArray first || first[0] is not JsonValue)
                return Results.BadRequest(new { error = "input_embeds must be [[d floats], ...]" });
            int d = first.Count;
            if (d != model.HiddenSize) return Results.BadRequest(new { error = $"hidden size {d} != {model.HiddenSize}" });
            float[] rows = embeds.SelectMany(r => r!.AsArray().Select(v => (float)v!.GetValue<double>())).ToArray();
            int maxNew = (int?)body["sampling_params"]?["max_new_tokens"] ?? 128;
            float temperature = (float?)body["sampling_params"]?["temperature"] ?? 1f;
            var tokens = model.Generator.Generate(rows, embeds.Count, maxNew, new Sampler(model.Tokenizer.VocabSize, temperature), model.StopTokens).ToList();
            var stream = new TextStream(model.Tokenizer).After(-1);
            var texts = new List<string>();
            string acc = "";
            foreach (int t in tokens) { acc += stream.Push(t); texts.Add(acc); }
            acc += stream.Flush();
            object Meta(bool done) => new { id = "sg1", prompt_tokens = embeds.Count, completion_tokens = tokens.Count, finish_reason = done ? new { type = tokens.Count >= maxNew ? "length" : "stop" } : null };
            if (body["stream"]?.GetValue<bool>() != true) return Results.Json(new { text = acc, meta_info = Meta(true) });
            h.Response.ContentType = "text/event-stream";
            for (int i = 0; i < texts.Count; i++)
            {
                await h.Response.WriteAsync("data: " + JsonSerializer.Serialize(new { text = i == texts.Count - 1 ? acc : texts[i], meta_info = Meta(i == texts.Count - 1) }) + "\n\n");
                await h.Response.Body.FlushAsync();
            }
            await h.Response.WriteAsync("data: [DONE]\n\n");
            return Results.Empty;
        });
        return app;
    }
}
