using System.Globalization;
using System.Text;
using LLama;
using LoPAProxy.ModelServer.Generation;

namespace LoPAProxy.ModelServer.Endpoints;

/// <summary>A chat message: role and its parts (text, or embedding rows [Count, hidden]).</summary>
internal sealed record ChatMessage(string Role, List<ChatPart> Parts);

/// <summary>Text, or embedding rows [Count, hidden].</summary>
internal sealed record ChatPart(string? Text, float[]? Rows, int Count);

/// <summary>
/// Renders a conversation to the decoder's prompt. Each embeddings part becomes a marker (a private-use character
/// and a per-request nonce, so no text can forge one) in the rendered text; the text is cut at the markers, each
/// cut tokenized, and the part's rows put where its marker stood — what vLLM does with its placeholder. Templates:
/// "auto" (the GGUF's tokenizer.chat_template through llama.cpp when the model has one, else "plain"), "plain"
/// (messages joined by newlines, for base models such as stories260K), "llama2" ([INST] … [/INST]), or a template
/// name llama.cpp knows ("chatml", "llama3", …). Text from a model template is tokenized with its control tokens
/// parsed, as llama.cpp's server does; plain and llama2 text never is.
/// </summary>
internal static class ChatTemplates
{
    public static PromptInput Render(string template, IReadOnlyList<ChatMessage> messages, ServedModel served)
    {
        string nonce = Guid.NewGuid().ToString("N");
        var parts = new List<ChatPart>();
        string Marker(ChatPart part)
        {
            parts.Add(part);
            return $"\uE000{nonce}:{parts.Count - 1}\uE001";
        }
        var contents = messages.Select(m => string.Concat(m.Parts.Select(p => p.Text ?? Marker(p)))).ToList();
        string name = template == "auto" ? (served.ChatTemplate is null ? "plain" : "model") : template;
        string text = name switch
        {
            "plain" => string.Join("\n", contents),
            "llama2" => Llama2(messages, contents),
            _ => WithLlamaCpp(name, messages, contents, served),
        };
        bool special = name is not ("plain" or "llama2");
        return Split(text, nonce, parts, served, special);
    }

    /// <summary>Llama-2-chat: [INST] &lt;&lt;SYS&gt;&gt;…&lt;&lt;/SYS&gt;&gt; user [/INST] assistant …</summary>
    private static string Llama2(IReadOnlyList<ChatMessage> messages, IReadOnlyList<string> contents)
    {
        var text = new StringBuilder();
        string? system = null;
        bool open = false;
        for (int i = 0; i < messages.Count; i++)
        {
            string role = messages[i].Role;
            if (role is "system" or "developer")
            {
                system = contents[i];
                continue;
            }
            if (role == "assistant")
            {
                if (open) text.Append(" [/INST] ");
                text.Append(contents[i]);
                open = false;
                continue;
            }
            text.Append(text.Length == 0 ? "[INST] " : " [INST] ");
            if (system != null) text.Append("<<SYS>>\n").Append(system).Append("\n<</SYS>>\n\n");
            system = null;
            text.Append(contents[i]);
            open = true;
        }
        if (open) text.Append(" [/INST]");
        return text.ToString();
    }

    /// <summary>llama.cpp's llama_chat_apply_template: the model's own template, or a named built-in one.</summary>
    private static string WithLlamaCpp(string name, IReadOnlyList<ChatMessage> messages, IReadOnlyList<string> contents,
        ServedModel served)
    {
        LLamaTemplate template = name == "model"
            ? new LLamaTemplate(served.Weights, strict: true)
            : new LLamaTemplate(served.Weights.NativeHandle, name, strict: true);
        template.AddAssistant = true;
        for (int i = 0; i < messages.Count; i++)
            template.Add(messages[i].Role == "developer" ? "system" : messages[i].Role, contents[i]);
        return Encoding.UTF8.GetString(template.Apply());
    }

    /// <summary>Cuts the rendered text at the markers: text pieces become tokens, markers the parts' rows.</summary>
    private static PromptInput Split(string text, string nonce, List<ChatPart> parts, ServedModel served, bool special)
    {
        var pieces = new List<PromptPiece>();
        int at = 0;
        bool first = true;
        while (at <= text.Length)
        {
            int marker = text.IndexOf("\uE000" + nonce + ":", at, StringComparison.Ordinal);
            string chunk = marker < 0 ? text[at..] : text[at..marker];
            int[] tokens = first
                ? served.Tokenize(chunk, addBos: true, special)
                : served.TokenizeContinuation(chunk, special);
            if (tokens.Length > 0) pieces.Add(PromptPiece.OfTokens(tokens));
            first = false;
            if (marker < 0) break;
            int end = text.IndexOf('\uE001', marker);
            int index = int.Parse(text.AsSpan(marker + nonce.Length + 2, end - marker - nonce.Length - 2),
                CultureInfo.InvariantCulture);
            pieces.Add(PromptPiece.OfRows(parts[index].Rows!, parts[index].Count));
            at = end + 1;
        }
        return new PromptInput(pieces);
    }
}
