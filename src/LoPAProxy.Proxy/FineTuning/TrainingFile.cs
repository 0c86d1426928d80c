using System.Text;
using System.Text.Json;

namespace LoPAProxy.Proxy.FineTuning;

/// <summary>What a fine-tuning file holds: its format and how many examples.</summary>
public sealed record TrainingFileSummary(string Format, int Examples)
{
    public const string Chat = "chat", PromptCompletion = "prompt_completion";
}

/// <summary>A file that is not fine-tuning data; the message names the lines (at most <see cref="TrainingFile.
/// MaxReported"/>).</summary>
public sealed class TrainingFileException(string message) : Exception(message);

/// <summary>
/// Checks a fine-tuning file as OpenAI's fine-tuning API defines it: UTF-8 JSONL, one example per line, every line
/// in one of two formats — chat, <c>{"messages": [{"role", "content"}, …]}</c> (system, user, assistant; the last
/// message is the assistant's answer, the target; the user messages are the instance the encoder reads, as at
/// serving time) or completions, <c>{"prompt": "…", "completion": "…"}</c> (the completion is the target). Empty
/// targets, missing roles, bad JSON and mixed formats are reported with their line numbers. Lengths against a base
/// model's context are checked when a job names the base.
/// </summary>
public static class TrainingFile
{
    /// <summary>Problems reported per file; the first of them is usually the one to fix.</summary>
    public const int MaxReported = 5;

    private static readonly string[] Roles = ["system", "user", "assistant"];

    /// <exception cref="TrainingFileException">the file is not fine-tuning data.</exception>
    public static TrainingFileSummary Validate(byte[] content)
    {
        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(content);
        }
        catch (DecoderFallbackException)
        {
            throw new TrainingFileException("the file is not UTF-8 text (JSONL expected)");
        }
        var problems = new List<string>();
        string? format = null;
        int examples = 0;
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length && problems.Count < MaxReported; i++)
        {
            string line = lines[i].TrimEnd('\r');
            if (line.Length == 0 && i == lines.Length - 1) break; // the final newline
            string? problem = CheckLine(line, ref format);
            if (problem is null) examples++;
            else problems.Add($"line {i + 1}: {problem}");
        }
        if (problems.Count > 0) throw new TrainingFileException(string.Join("; ", problems));
        if (examples == 0) throw new TrainingFileException("the file holds no examples");
        return new TrainingFileSummary(format!, examples);
    }

    /// <summary>Null for a good example; its format, once known, must hold for every line.</summary>
    private static string? CheckLine(string line, ref string? format)
    {
        if (line.Trim().Length == 0) return "an empty line (one JSON example per line)";
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            return $"not valid JSON ({e.Message.Split(" LineNumber", 2)[0]})";
        }
        using (document)
        {
            JsonElement example = document.RootElement;
            if (example.ValueKind != JsonValueKind.Object) return "not a JSON object";
            string? lineFormat = example.TryGetProperty("messages", out _) ? TrainingFileSummary.Chat
                : example.TryGetProperty("prompt", out _) ? TrainingFileSummary.PromptCompletion
                : null;
            if (lineFormat is null) return "expected {\"messages\": […]} or {\"prompt\": …, \"completion\": …}";
            if (format is not null && format != lineFormat)
                return $"a {lineFormat} example in a {format} file (one format per file)";
            format ??= lineFormat;
            return lineFormat == TrainingFileSummary.Chat ? CheckChat(example) : CheckCompletion(example);
        }
    }

    private static string? CheckChat(JsonElement example)
    {
        JsonElement messages = example.GetProperty("messages");
        if (messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() < 2)
            return "'messages' must be a list of at least a user and an assistant message";
        bool user = false;
        string? lastRole = null, lastContent = null;
        foreach (JsonElement message in messages.EnumerateArray())
        {
            if (message.ValueKind != JsonValueKind.Object) return "every message must be an object";
            if (!message.TryGetProperty("role", out JsonElement role) || role.ValueKind != JsonValueKind.String)
                return "a message without a 'role'";
            if (!Roles.Contains(role.GetString()))
                return $"role '{role.GetString()}' is not one of {string.Join(", ", Roles)}";
            if (!message.TryGetProperty("content", out JsonElement content)
                || content.ValueKind != JsonValueKind.String)
            {
                return $"a {role.GetString()} message without string 'content'";
            }
            user |= role.GetString() == "user" && content.GetString()!.Trim().Length > 0;
            lastRole = role.GetString();
            lastContent = content.GetString();
        }
        if (!user) return "no user message with text (the instance the encoder reads)";
        if (lastRole != "assistant") return "the last message must be the assistant's (the target)";
        return lastContent!.Trim().Length == 0 ? "the assistant's answer (the target) is empty" : null;
    }

    private static string? CheckCompletion(JsonElement example)
    {
        if (example.GetProperty("prompt") is not { ValueKind: JsonValueKind.String } prompt)
            return "'prompt' must be a string";
        if (!example.TryGetProperty("completion", out JsonElement completion)
            || completion.ValueKind != JsonValueKind.String)
        {
            return "'completion' must be a string";
        }
        if (prompt.GetString()!.Trim().Length == 0) return "the prompt is empty";
        return completion.GetString()!.Trim().Length == 0 ? "the completion (the target) is empty" : null;
    }
}
