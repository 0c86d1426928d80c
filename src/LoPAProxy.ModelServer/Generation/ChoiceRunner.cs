using System.Runtime.CompilerServices;
using System.Text;

namespace LoPAProxy.ModelServer.Generation;

/// <summary>A piece of a choice's text; the last one carries the finish reason and token count. When logprobs were
/// asked for, Tokens are the sampled tokens whose text this piece completes.</summary>
public readonly record struct TextDelta(string Text, FinishReason? Finish, int CompletionTokens,
    IReadOnlyList<SampledToken>? Tokens = null);

/// <summary>
/// Runs one choice on the decoder and yields its text as it becomes final: UTF-8 reassembled across tokens, and
/// text that could still turn into a stop string held back until it cannot. A stop string ends the choice (finish
/// "stop", the generation is cancelled) and is not included, as in OpenAI's API. With logprobs, a token goes out with
/// the piece that completes its text; a stop string drops the tokens that only wrote the stop string.
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
        TokenSpans? spans = sampling.TopLogprobs is null ? null : new TokenSpans();
        try
        {
            await foreach (SampledToken token in generation.Tokens.ReadAllAsync(cancel))
            {
                tokens++;
                decoderText.Add(token.Token);
                string piece = decoderText.Read();
                if (tokens == 1 && afterBos && piece.StartsWith(' ')) piece = piece[1..];
                spans?.Add(token, text.Length, text.Length + piece.Length);
                text.Append(piece);
                string full = text.ToString();
                int cut = FirstStop(full, stops, Math.Max(0, sent - hold));
                if (cut >= 0)
                {
                    yield return new TextDelta(full[sent..cut], FinishReason.Stop, tokens, spans?.StartingBefore(cut));
                    yield break;
                }
                int safe = Math.Max(sent, full.Length - hold);
                if (safe > sent)
                {
                    yield return new TextDelta(full[sent..safe], null, tokens, spans?.EndingBy(safe));
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
            ? new TextDelta(rest[sent..tail], FinishReason.Stop, tokens, spans?.StartingBefore(tail))
            : new TextDelta(rest[sent..], generation.Finish, tokens, spans?.StartingBefore(int.MaxValue));
    }

    /// <summary>Sampled tokens not yet sent, with the text each wrote (start..end in the choice's text).</summary>
    private sealed class TokenSpans
    {
        private readonly List<(SampledToken Token, int Start, int End)> _pending = new();

        public void Add(SampledToken token, int start, int end) => _pending.Add((token, start, end));

        /// <summary>Takes the tokens whose whole text lies before <paramref name="offset"/>.</summary>
        public List<SampledToken> EndingBy(int offset) => Take(offset, whole: true);

        /// <summary>Takes the tokens that wrote any text before <paramref name="offset"/> (the final piece).
        /// </summary>
        public List<SampledToken> StartingBefore(int offset) => Take(offset, whole: false);

        private List<SampledToken> Take(int offset, bool whole)
        {
            int count = 0;
            while (count < _pending.Count && IsSent(_pending[count], offset, whole)) count++;
            List<SampledToken> taken = _pending.GetRange(0, count).ConvertAll(p => p.Token);
            _pending.RemoveRange(0, count);
            return taken;
        }

        private static bool IsSent((SampledToken Token, int Start, int End) p, int offset, bool whole) =>
            whole ? p.End <= offset && p.Start < offset : p.Start < offset;
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
