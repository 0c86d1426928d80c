using LoPAProxy.Engine.Networks.Llama;

namespace LoPAProxy.ModelServer.Generation;

/// <summary>A piece of a choice's text; the last one carries the finish reason and token count.</summary>
public readonly record struct TextDelta(string Text, FinishReason? Finish, int CompletionTokens);

/// <summary>
/// Runs one choice and yields its text as it becomes final: UTF-8 reassembled across tokens, and text that
/// could still turn into a stop string held back until it cannot. A stop string ends the choice (finish
/// "stop") and is not included, as in OpenAI's API.
/// </summary>
public static class ChoiceRunner
{
    public static IEnumerable<TextDelta> Run(ServedModel served, float[] rows, int rowCount, int previousToken, int maxTokens,
        Sampler sampler, IReadOnlyList<string> stops, CancellationToken cancel)
    {
        var stream = new TextStream(served.Tokenizer).After(previousToken);
        var text = new System.Text.StringBuilder();
        int sent = 0, tokens = 0, hold = stops.Count == 0 ? 0 : stops.Max(s => s.Length) - 1;
        FinishReason finish = FinishReason.Length;
        foreach (int token in served.Generator.Generate(rows, rowCount, maxTokens, sampler, served.StopTokens, f => finish = f, cancel))
        {
            tokens++;
            text.Append(stream.Push(token));
            string full = text.ToString();
            int cut = FirstStop(full, stops, Math.Max(0, sent - hold));
            if (cut >= 0)
            {
                yield return new TextDelta(full[sent..cut], FinishReason.Stop, tokens);
                yield break;
            }
            int safe = Math.Max(sent, full.Length - hold);
            if (safe > sent) { yield return new TextDelta(full[sent..safe], null, tokens); sent = safe; }
        }
        string rest = text.Append(stream.Flush()).ToString();
        int tail = FirstStop(rest, stops, Math.Max(0, sent - hold));
        yield return tail >= 0 ? new TextDelta(rest[sent..tail], FinishReason.Stop, tokens) : new TextDelta(rest[sent..], finish, tokens);
    }

    private static int FirstStop(string text, IReadOnlyList<string> stops, int from)
    {
        int best = -1;
        foreach (string s in stops)
        {
            if (s.Length == 0) continue;
            int i = text.IndexOf(s, from, StringComparison.Ordinal);
            if (i >= 0 && (best < 0 || i < best)) best = i;
        }
        return best;
    }
}
