using System.Runtime.CompilerServices;
using System.Text;

namespace LoPAProxy.ModelServer.Generation;

/// <summary>A piece of a choice's text; the last one carries the finish reason and token count.</summary>
public readonly record struct TextDelta(string Text, FinishReason? Finish, int CompletionTokens);

/// <summary>
/// Runs one choice on the decoder and yields its text as it becomes final: UTF-8 reassembled across tokens, and
/// text that could still turn into a stop string held back until it cannot. A stop string ends the choice (finish
/// "stop", the generation is cancelled) and is not included, as in OpenAI's API.
/// </summary>
public static class ChoiceRunner
{
    public static async IAsyncEnumerable<TextDelta> RunAsync(ServedModel served, BatchDecoder decoder,
        PromptInput prompt, int maxTokens, SamplingSettings sampling, IReadOnlyList<string> stops,
        [EnumeratorCancellation] CancellationToken cancel)
    {
        using var stopped = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        GenerationHandle generation = decoder.Start(prompt, maxTokens, sampling, stopped.Token);
        var decoderText = served.NewTextDecoder();
        var text = new StringBuilder();
        int sent = 0, tokens = 0, hold = stops.Count == 0 ? 0 : stops.Max(s => s.Length) - 1;
        // SentencePiece decoding drops the leading space of the piece right after BOS (run.c does the same).
        bool afterBos = prompt.Pieces[^1].Tokens is { Length: > 0 } last && last[^1] == served.BosToken;
        try
        {
            await foreach (int token in generation.Tokens.ReadAllAsync(cancel))
            {
                tokens++;
                decoderText.Add(token);
                string piece = decoderText.Read();
                if (tokens == 1 && afterBos && piece.StartsWith(' ')) piece = piece[1..];
                text.Append(piece);
                string full = text.ToString();
                int cut = FirstStop(full, stops, Math.Max(0, sent - hold));
                if (cut >= 0)
                {
                    yield return new TextDelta(full[sent..cut], FinishReason.Stop, tokens);
                    yield break;
                }
                int safe = Math.Max(sent, full.Length - hold);
                if (safe > sent)
                {
                    yield return new TextDelta(full[sent..safe], null, tokens);
                    sent = safe;
                }
            }
        }
        finally
        {
            // A stop string, an error or a client that left: the decoder frees the sequence at its next turn.
            stopped.Cancel();
        }
        string rest = text.ToString();
        int tail = FirstStop(rest, stops, Math.Max(0, sent - hold));
        yield return tail >= 0
            ? new TextDelta(rest[sent..tail], FinishReason.Stop, tokens)
            : new TextDelta(rest[sent..], generation.Finish, tokens);
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
