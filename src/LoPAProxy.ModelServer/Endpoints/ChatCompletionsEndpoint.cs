using System.Text.Json;
using LoPAProxy.ModelServer.Generation;
using LoPAProxy.ModelServer.OpenAi;
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

    public static async Task HandleAsync(HttpContext http, ServedModel served, GenerationScheduler scheduler, ModelServerOptions options)
    {
        JsonElement body = await RequestBody.ReadAsync(http, served);
        var s = SamplingRequest.Parse(body, options, chat: true);
        if (JsonFields.Get(body, "logprobs") is { ValueKind: JsonValueKind.True }) throw ApiException.BadRequest("logprobs are not supported by this server", "logprobs", "unsupported");
        if (JsonFields.Get(body, "messages") is not { ValueKind: JsonValueKind.Array } messages || messages.GetArrayLength() == 0)
            throw ApiException.BadRequest("'messages' must be a non-empty list", "messages", "missing_messages");

        var parsed = new List<ChatMessage>();
        int m = 0;
        foreach (JsonElement msg in messages.EnumerateArray())
        {
            string param = $"messages[{m++}]";
            if (msg.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest("each message must be an object", param);
            string role = JsonFields.String(msg, "role") ?? throw ApiException.BadRequest("a message needs a 'role'", param + ".role");
            if (role is not ("system" or "developer" or "user" or "assistant" or "tool")) throw ApiException.BadRequest($"unknown role '{role}'", param + ".role");
            parsed.Add(new ChatMessage(role, Parts(msg, param, served)));
        }
        IReadOnlyList<ChatSegment> segments = ChatTemplate.Render(options.ChatTemplate, parsed);
        Prompt prompt = Build(segments, served);
        if (prompt.Count <= 1) throw ApiException.BadRequest("the conversation is empty", "messages", "empty_prompt");
        await GenerationResponder.RespondAsync(http, served, scheduler, new[] { prompt }, s, chat: true, echo: false, options.DelayPerTokenMs);
    }

    private static List<ChatSegment> Parts(JsonElement msg, string param, ServedModel served)
    {
        var parts = new List<ChatSegment>();
        if (JsonFields.Get(msg, "content") is not { } content) return parts;
        if (content.ValueKind == JsonValueKind.String) { parts.Add(Text(content.GetString()!, param + ".content")); return parts; }
        if (content.ValueKind != JsonValueKind.Array) throw ApiException.BadRequest("'content' must be a string or a list of parts", param + ".content");
        int i = 0;
        foreach (JsonElement part in content.EnumerateArray())
        {
            string pp = $"{param}.content[{i++}]";
            string type = (part.ValueKind == JsonValueKind.Object ? JsonFields.String(part, "type") : null) ?? throw ApiException.BadRequest("each content part needs a 'type'", pp);
            switch (type)
            {
                case "text":
                    parts.Add(Text(JsonFields.String(part, "text") ?? throw ApiException.BadRequest("a text part needs 'text'", pp), pp));
                    break;
                case "prompt_embeds":
                    string data = JsonFields.String(part, "data") ?? throw ApiException.BadRequest("a prompt_embeds part needs 'data'", pp);
                    var (rows, count) = PromptEmbeds.Decode(data, served.HiddenSize, pp);
                    parts.Add(new ChatSegment(null, rows, count));
                    break;
                default:
                    throw ApiException.BadRequest($"content part type '{type}' is not supported (text, prompt_embeds)", pp, "unsupported");
            }
        }
        return parts;
    }

    private static ChatSegment Text(string text, string param) =>
        text.Contains(Placeholder, StringComparison.Ordinal)
            ? throw ApiException.BadRequest($"text must not contain the placeholder '{Placeholder}'", param, "placeholder_in_text")
            : new ChatSegment(text, null, 0);

    /// <summary>BOS, then each segment: text tokenized in place (no dummy prefix after the first), embeddings as given.</summary>
    private static Prompt Build(IReadOnlyList<ChatSegment> segments, ServedModel served)
    {
        int dim = served.HiddenSize;
        var rows = new List<float>(served.Generator.EmbedTokens([served.Tokenizer.BosId]));
        int count = 1, last = served.Tokenizer.BosId;
        bool first = true;
        foreach (ChatSegment seg in segments)
        {
            if (seg.Text is { } text)
            {
                if (text.Length == 0) continue;
                int[] tokens = served.Tokenizer.Encode(text, addBos: false, addEos: false, continuation: !first);
                rows.AddRange(served.Generator.EmbedTokens(tokens));
                count += tokens.Length;
                if (tokens.Length > 0) last = tokens[^1];
            }
            else
            {
                rows.AddRange(seg.Rows!.AsSpan(0, seg.Count * dim).ToArray());
                count += seg.Count;
                last = -1;
            }
            first = false;
        }
        return new Prompt(rows.ToArray(), count, last, null, segments.Any(s => s.Rows != null));
    }
}

internal sealed record ChatMessage(string Role, List<ChatSegment> Parts);

/// <summary>Text, or embedding rows [Count, hidden].</summary>
internal sealed record ChatSegment(string? Text, float[]? Rows, int Count);

/// <summary>Chat templates, rendered to segments so embedding parts keep their place.</summary>
internal static class ChatTemplate
{
    public static IReadOnlyList<ChatSegment> Render(string name, IReadOnlyList<ChatMessage> messages) => name switch
    {
        "plain" => Plain(messages),
        "llama2" => Llama2(messages),
        _ => throw new InvalidOperationException($"unknown chat template '{name}'"),
    };

    /// <summary>Each message's parts, messages separated by a newline: fits base models such as stories260K.</summary>
    private static List<ChatSegment> Plain(IReadOnlyList<ChatMessage> messages)
    {
        var r = new List<ChatSegment>();
        for (int i = 0; i < messages.Count; i++)
        {
            if (i > 0) r.Add(new ChatSegment("\n", null, 0));
            r.AddRange(messages[i].Parts);
        }
        return r;
    }

    /// <summary>Llama-2-chat: [INST] &lt;&lt;SYS&gt;&gt;…&lt;&lt;/SYS&gt;&gt; user [/INST] assistant … (turn separators as text).</summary>
    private static List<ChatSegment> Llama2(IReadOnlyList<ChatMessage> messages)
    {
        var r = new List<ChatSegment>();
        List<ChatSegment>? system = null;
        bool open = false;
        foreach (ChatMessage m in messages)
        {
            if (m.Role is "system" or "developer") { system = m.Parts; continue; }
            if (m.Role == "assistant")
            {
                if (open) r.Add(new ChatSegment(" [/INST] ", null, 0));
                r.AddRange(m.Parts);
                open = false;
                continue;
            }
            r.Add(new ChatSegment(r.Count == 0 ? "[INST] " : " [INST] ", null, 0));
            if (system != null)
            {
                r.Add(new ChatSegment("<<SYS>>\n", null, 0)); r.AddRange(system); r.Add(new ChatSegment("\n<</SYS>>\n\n", null, 0));
                system = null;
            }
            r.AddRange(m.Parts);
            open = true;
        }
        if (open) r.Add(new ChatSegment(" [/INST]", null, 0));
        return r;
    }
}
