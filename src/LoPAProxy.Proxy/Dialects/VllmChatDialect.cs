using System.Text.Json.Nodes;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Requests;
using LoPAProxy.Proxy.SoftPrompts;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Dialects;

/// <summary>
/// vllm-chat: the m×d soft prompt as a {"type":"prompt_embeds"} content part next to the instance text in the last
/// user message; any literal "&lt;prompt_embeds&gt;" in text is neutralised (vLLM rejects it). Only m×d travels.
/// </summary>
public sealed class VllmChatDialect(SoftPromptService softPrompts, PromptBudget budget, IOptions<LoPAOptions> options)
    : IBackendDialect, IDialectTraits
{
    public const string Placeholder = "<prompt_embeds>";

    public static string Name => "vllm-chat";
    public static bool NeedsModel => false;
    public EndpointKind SoftPromptEndpoint => EndpointKind.Chat;
    /// <summary>An estimate: torch.save of Z, its base64 as a string, the serialised body (only m × d
    /// values).</summary>
    public double RewriteBytesPerValue => 24;

    public async Task<RewriteResult> RewriteAsync(DialectRequest request, CancellationToken cancel)
    {
        JsonObject body = request.Body;
        if (body["messages"] is not JsonArray messages || messages.Count == 0)
            throw Errors.MessagesMissing();
        foreach (JsonNode? message in messages) NeutraliseText(message);
        List<int> users = UserMessageIndexes(messages);
        if (users.Count == 0)
            throw ApiException.BadRequest("no user message to take the instance from", "messages", "nothing_to_encode");
        string instance = options.Value.InstanceText == InstanceTextSource.AllUser
            ? string.Join("\n", users.Select(i => MessageText.Of(messages[i])))
            : MessageText.Of(messages[users[^1]]);
        if (string.IsNullOrWhiteSpace(instance) && request.Generator.Adapter.Config.UsesEncoder)
            throw ApiException.BadRequest("the user message has no text to encode", "messages", "nothing_to_encode");
        long values = (long)request.Generator.Rows * request.Generator.TokenDim;
        await budget.ReserveRewriteAsync(request.Http, request.Backend, values, RewriteBytesPerValue, cancel);
        float[] z = await softPrompts.ComputeAsync(request.Generator, [instance], request.Timings, cancel);
        string data = SoftPromptService.Base64(z, request.Generator.Rows, request.Generator.TokenDim,
            SoftPromptService.WireType(request.Backend.WireDType));
        InsertEmbedsPart(messages[users[^1]]!, data, request.Backend.EmbedsPosition);
        body["model"] = request.Backend.Model;
        return new RewriteResult(request.Generator.Rows, data.Length);
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
    private static void InsertEmbedsPart(JsonNode message, string data, EmbedsPosition position)
    {
        if (message is not JsonObject)
            throw Errors.MessageNotObject();
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
        if (position == EmbedsPosition.After) parts.Add(embeds);
        else parts.Insert(Math.Max(0, firstText), embeds);
        message["content"] = parts;
    }

    private static string Neutralise(string s) => s.Replace(Placeholder, "<prompt_embeds\u200B>",
        StringComparison.Ordinal);
}
