using System.Text.Json;
using LoPAProxy.ModelServer.Generation;
using LoPAProxy.OpenAi;
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
    private const int MaxPrompts = 64;

    public static async Task HandleAsync(HttpContext http, ModelServerServices services)
    {
        ServedModel served = services.Model;
        JsonElement body = await RequestBody.ReadAsync(http, served);
        var sampling = SamplingRequest.Parse(body, services.Options, chat: false, served.VocabSize);
        bool echo = JsonFields.Bool(body, "echo") ?? false;
        FeaturePolicy.Check(body, chat: false);
        bool promptLogprobs = JsonFields.Get(body, "prompt_logprobs") is not null;
        if (echo && sampling.TopLogprobs is not null)
        {
            throw ApiException.BadRequest("logprobs of echoed prompt tokens are not supported by this server (echo " +
                "or logprobs alone are)", "echo", "unsupported_parameter");
        }
        var prompts = new List<Prompt>();
        if (JsonFields.Get(body, "prompt_embeds") is { } embeds)
        {
            if (echo)
            {
                throw ApiException.BadRequest("echo is not supported with prompt_embeds", "echo",
                    "unsupported_parameter");
            }

            if (promptLogprobs)
            {
                throw ApiException.BadRequest("prompt_logprobs is not supported with prompt_embeds", "prompt_logprobs",
                    "unsupported_parameter");
            }

            prompts.AddRange(EmbedsPrompts(embeds, served));
        }
        else if (promptLogprobs)
        {
            throw ApiException.BadRequest("prompt_logprobs is not supported by this server", "prompt_logprobs",
                "unsupported_parameter");
        }

        if (JsonFields.Get(body, "prompt") is { } text) prompts.AddRange(TextPrompts(text, served));
        if (prompts.Count == 0)
            throw ApiException.BadRequest("either 'prompt' or 'prompt_embeds' is required", "prompt", "missing_prompt");
        if (prompts.Count > MaxPrompts)
            throw Errors.TooManyPrompts(MaxPrompts);
        await GenerationResponder.RespondAsync(http, services, prompts, sampling, chat: false, echo);
    }

    private static IEnumerable<Prompt> EmbedsPrompts(JsonElement embeds, ServedModel served)
    {
        string[] items = embeds.ValueKind switch
        {
            JsonValueKind.String => new[] { embeds.GetString()! },
            JsonValueKind.Array when embeds.GetArrayLength() is > 0 and <= MaxPrompts =>
                embeds.EnumerateArray().Select(EmbedsString).ToArray(),
            _ => throw ApiException.BadRequest(
                $"'prompt_embeds' must be a base64 string or a list of 1 to {MaxPrompts}", "prompt_embeds"),
        };
        for (int i = 0; i < items.Length; i++)
        {
            string param = items.Length > 1 ? $"prompt_embeds[{i}]" : "prompt_embeds";
            var (rows, count) = PromptEmbeds.Decode(items[i], served.HiddenSize, param);
            yield return new Prompt(new PromptInput(new[] { PromptPiece.OfRows(rows, count) }), null);
        }
    }

    private static string EmbedsString(JsonElement e) => e.ValueKind == JsonValueKind.String
        ? e.GetString()!
        : throw ApiException.BadRequest("'prompt_embeds' must hold base64 strings", "prompt_embeds");

    private static IEnumerable<Prompt> TextPrompts(JsonElement p, ServedModel served)
    {
        switch (p.ValueKind)
        {
            case JsonValueKind.String:
                return new[] { FromText(p.GetString()!, "prompt", served) };
            case JsonValueKind.Array when p.GetArrayLength() == 0:
                throw Errors.EmptyPrompt();
            case JsonValueKind.Array when p[0].ValueKind == JsonValueKind.Number:
                return new[] { FromIds(p, "prompt", served) };
            case JsonValueKind.Array when p.GetArrayLength() > MaxPrompts:
                throw Errors.TooManyPrompts(MaxPrompts);
            case JsonValueKind.Array:
                return p.EnumerateArray().Select((e, i) => FromListItem(e, $"prompt[{i}]", served)).ToList();
            default:
                throw Errors.PromptShape();
        }
    }

    private static Prompt FromListItem(JsonElement e, string param, ServedModel served) => e.ValueKind switch
    {
        JsonValueKind.String => FromText(e.GetString()!, param, served),
        JsonValueKind.Array => FromIds(e, param, served),
        _ => throw Errors.PromptShape(param),
    };

    private static Prompt FromText(string text, string param, ServedModel served)
    {
        if (text.Length == 0) throw Errors.EmptyPrompt(param);
        int[] tokens = served.Tokenize(text, addBos: true);
        if (tokens.Length == 0) throw Errors.EmptyPrompt(param);
        return new Prompt(new PromptInput(new[] { PromptPiece.OfTokens(tokens) }), text);
    }

    private static Prompt FromIds(JsonElement ids, string param, ServedModel served)
    {
        if (ids.GetArrayLength() == 0) throw Errors.EmptyPrompt(param);
        if (ids.GetArrayLength() > served.ContextLength)
        {
            string message = $"This model's maximum context length is {served.ContextLength} tokens; the prompt " +
                $"has {ids.GetArrayLength()}";
            throw ApiException.BadRequest(message, param, "context_length_exceeded");
        }
        var tokens = new int[ids.GetArrayLength()];
        int i = 0;
        foreach (JsonElement e in ids.EnumerateArray())
        {
            bool valid = e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out tokens[i]) &&
                (uint)tokens[i] < (uint)served.VocabSize;
            if (!valid)
            {
                throw ApiException.BadRequest($"token ids must be integers in [0, {served.VocabSize})", param,
                    "invalid_token_id");
            }

            i++;
        }
        return new Prompt(new PromptInput(new[] { PromptPiece.OfTokens(tokens) }), served.Decode(tokens));
    }
}
