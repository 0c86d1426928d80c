using System.Text.Json;
using LoPAProxy.ModelServer.Generation;
using LoPAProxy.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.ModelServer.Endpoints;

/// <summary>
/// POST /v1/chat/completions. Message content is a string or a list of parts: {"type":"text","text"} and
/// vLLM's {"type":"prompt_embeds","data":"&lt;base64&gt;"}, whose rows stand in the prompt where the part stands.
/// Text containing vLLM's placeholder "&lt;prompt_embeds&gt;" is refused, as vLLM refuses it.
/// </summary>
internal static class ChatCompletionsEndpoint
{
    public const string Placeholder = "<prompt_embeds>";
    private static readonly string[] Roles = { "system", "developer", "user", "assistant", "tool" };

    public static async Task HandleAsync(HttpContext http, ModelServerServices services)
    {
        ServedModel served = services.Model;
        JsonElement body = await RequestBody.ReadAsync(http, served);
        var sampling = SamplingRequest.Parse(body, services.Options, chat: true, served.VocabSize);
        FeaturePolicy.Check(body, chat: true);
        if (JsonFields.Get(body, "messages") is not { ValueKind: JsonValueKind.Array } messages
            || messages.GetArrayLength() == 0)
        {
            throw Errors.MessagesMissing("missing_messages");
        }

        var parsed = new List<ChatMessage>();
        int index = 0;
        foreach (JsonElement message in messages.EnumerateArray())
            parsed.Add(Message(message, $"messages[{index++}]", served));
        PromptInput input = ChatTemplates.Render(services.Options.ChatTemplate, parsed, served);
        if (input.Count <= 1) throw ApiException.BadRequest("the conversation is empty", "messages", "empty_prompt");
        await GenerationResponder.RespondAsync(http, services, new[] { new Prompt(input, null) }, sampling, chat: true,
            echo: false);
    }

    private static ChatMessage Message(JsonElement message, string param, ServedModel served)
    {
        if (message.ValueKind != JsonValueKind.Object)
            throw Errors.MessageNotObject(param);
        string role = JsonFields.String(message, "role")
            ?? throw ApiException.BadRequest("a message needs a 'role'", param + ".role");
        if (!Roles.Contains(role)) throw ApiException.BadRequest($"unknown role '{role}'", param + ".role");
        return new ChatMessage(role, Parts(message, param, served));
    }

    private static List<ChatPart> Parts(JsonElement message, string param, ServedModel served)
    {
        var parts = new List<ChatPart>();
        if (JsonFields.Get(message, "content") is not { } content) return parts;
        if (content.ValueKind == JsonValueKind.String)
        {
            parts.Add(Text(content.GetString()!, param + ".content"));
            return parts;
        }
        if (content.ValueKind != JsonValueKind.Array)
            throw ApiException.BadRequest("'content' must be a string or a list of parts", param + ".content");
        int i = 0;
        foreach (JsonElement part in content.EnumerateArray()) parts.Add(Part(part, $"{param}.content[{i++}]", served));
        return parts;
    }

    private static ChatPart Part(JsonElement part, string param, ServedModel served)
    {
        string type = (part.ValueKind == JsonValueKind.Object ? JsonFields.String(part, "type") : null)
            ?? throw ApiException.BadRequest("each content part needs a 'type'", param);
        switch (type)
        {
            case "text":
                return Text(JsonFields.String(part, "text")
                    ?? throw ApiException.BadRequest("a text part needs 'text'", param), param);
            case "prompt_embeds":
                string data = JsonFields.String(part, "data")
                    ?? throw ApiException.BadRequest("a prompt_embeds part needs 'data'", param);
                var (rows, count) = PromptEmbeds.Decode(data, served.HiddenSize, param);
                return new ChatPart(null, rows, count);
            default:
                throw ApiException.BadRequest($"content part type '{type}' is not supported (text, prompt_embeds)",
                    param, "unsupported_parameter");
        }
    }

    private static ChatPart Text(string text, string param) =>
        text.Contains(Placeholder, StringComparison.Ordinal)
            ? throw ApiException.BadRequest($"text must not contain the placeholder '{Placeholder}'", param,
                "placeholder_in_text")
            : new ChatPart(text, null, 0);
}
