using System.Text.Json;
using LoPAProxy.ModelServer.Generation;
using LoPAProxy.ModelServer.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.ModelServer.Endpoints;

/// <summary>
/// POST /v1/completions with vLLM's prompt semantics: "prompt" is a string, a list of strings, token ids or a
/// list of token-id lists; "prompt_embeds" is one base64 torch.save tensor or a list (each a whole prompt, no
/// BOS added). Both together are separate prompts, embeddings first. echo and prompt_logprobs are refused
/// with embeddings.
/// </summary>
internal static class CompletionsEndpoint
{
    public static async Task HandleAsync(HttpContext http, ServedModel served, GenerationScheduler scheduler, ModelServerOptions options)
    {
        JsonElement body = await RequestBody.ReadAsync(http, served);
        var s = SamplingRequest.Parse(body, options, chat: false);
        bool echo = JsonFields.Bool(body, "echo") ?? false;
        if (JsonFields.Get(body, "logprobs") is not null) throw ApiException.BadRequest("logprobs are not supported by this server", "logprobs", "unsupported");
        bool promptLogprobs = JsonFields.Get(body, "prompt_logprobs") is not null;

        var prompts = new List<Prompt>();
        if (JsonFields.Get(body, "prompt_embeds") is { } pe)
        {
            if (echo) throw ApiException.BadRequest("echo is not supported with prompt_embeds", "echo", "unsupported");
            if (promptLogprobs) throw ApiException.BadRequest("prompt_logprobs is not supported with prompt_embeds", "prompt_logprobs", "unsupported");
            string[] items = pe.ValueKind switch
            {
                JsonValueKind.String => new[] { pe.GetString()! },
                JsonValueKind.Array when pe.GetArrayLength() is > 0 and <= 64 => pe.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw ApiException.BadRequest("'prompt_embeds' must hold base64 strings", "prompt_embeds")).ToArray(),
                _ => throw ApiException.BadRequest("'prompt_embeds' must be a base64 string or a list of 1 to 64 of them", "prompt_embeds"),
            };
            for (int i = 0; i < items.Length; i++)
            {
                var (rows, count) = PromptEmbeds.Decode(items[i], served.HiddenSize, items.Length > 1 ? $"prompt_embeds[{i}]" : "prompt_embeds");
                prompts.Add(new Prompt(rows, count, -1, null, true));
            }
        }
        else if (promptLogprobs) throw ApiException.BadRequest("prompt_logprobs is not supported by this server", "prompt_logprobs", "unsupported");

        if (JsonFields.Get(body, "prompt") is { } p) prompts.AddRange(TextPrompts(p, served));
        if (prompts.Count == 0) throw ApiException.BadRequest("either 'prompt' or 'prompt_embeds' is required", "prompt", "missing_prompt");
        await GenerationResponder.RespondAsync(http, served, scheduler, prompts, s, chat: false, echo, options.DelayPerTokenMs);
    }

    private static IEnumerable<Prompt> TextPrompts(JsonElement p, ServedModel served)
    {
        Prompt FromText(string text, string param)
        {
            if (text.Length == 0) throw ApiException.BadRequest("the prompt is empty", param, "empty_prompt");
            int[] tokens = served.Tokenizer.Encode(text, addBos: true, addEos: false);
            return new Prompt(served.Generator.EmbedTokens(tokens), tokens.Length, tokens[^1], text, false);
        }
        Prompt FromIds(JsonElement ids, string param)
        {
            if (ids.GetArrayLength() == 0) throw ApiException.BadRequest("the prompt is empty", param, "empty_prompt");
            int[] tokens = ids.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int t) && (uint)t < (uint)served.Tokenizer.VocabSize
                ? t : throw ApiException.BadRequest($"token ids must be integers in [0, {served.Tokenizer.VocabSize})", param, "invalid_token_id")).ToArray();
            return new Prompt(served.Generator.EmbedTokens(tokens), tokens.Length, tokens[^1], served.Tokenizer.Decode(tokens), false);
        }
        switch (p.ValueKind)
        {
            case JsonValueKind.String:
                return new[] { FromText(p.GetString()!, "prompt") };
            case JsonValueKind.Array when p.GetArrayLength() == 0:
                throw ApiException.BadRequest("the prompt is empty", "prompt", "empty_prompt");
            case JsonValueKind.Array when p.GetArrayLength() > 64:
                throw ApiException.BadRequest("at most 64 prompts per request", "prompt");
            case JsonValueKind.Array when p[0].ValueKind == JsonValueKind.Number:
                return new[] { FromIds(p, "prompt") };
            case JsonValueKind.Array:
                return p.EnumerateArray().Select((e, i) => e.ValueKind switch
                {
                    JsonValueKind.String => FromText(e.GetString()!, $"prompt[{i}]"),
                    JsonValueKind.Array => FromIds(e, $"prompt[{i}]"),
                    _ => throw ApiException.BadRequest("'prompt' must be a string, a list of strings, or token ids", $"prompt[{i}]"),
                }).ToList();
            default:
                throw ApiException.BadRequest("'prompt' must be a string, a list of strings, or token ids", "prompt");
        }
    }
}
