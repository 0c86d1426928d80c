using System.Text;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Engine.Networks.Llama;

/// <summary>Why generation ended, in OpenAI's words.</summary>
public enum FinishReason { Length, Stop }

/// <summary>
/// Autoregressive generation: one batched forward pass over the prompt rows (token embeddings or soft-prompt
/// rows alike), then one position per new token with the KV cache. Each call owns its state, so concurrent
/// calls never share a cache.
/// </summary>
public sealed class LlamaGenerator(LlamaModel model)
{
    public LlamaModel Model => model;

    /// <summary>
    /// Yields new token ids. Stops before a token in <paramref name="stopTokens"/> (finish = Stop), after
    /// <paramref name="maxNewTokens"/> (finish = Length), or at the context limit (Length).
    /// </summary>
    public IEnumerable<int> Generate(float[] promptRows, int rowCount, int maxNewTokens, Sampler sampler,
        IReadOnlySet<int> stopTokens, Action<FinishReason>? finished = null, CancellationToken cancel = default)
    {
        LlamaConfig c = model.Config;
        if (rowCount <= 0) throw new ArgumentException("the prompt is empty");
        if (rowCount > c.MaxSeqLen) throw new ArgumentException($"the prompt has {rowCount} positions, the context holds {c.MaxSeqLen}");
        int budget = Math.Min(maxNewTokens, c.MaxSeqLen - rowCount + 1);
        LlamaState state = model.NewState(rowCount + budget);
        var logits = new float[c.VocabSize];
        var x = new float[c.Dim];
        cancel.ThrowIfCancellationRequested();
        model.Forward(promptRows, rowCount, state, logits);
        for (int i = 0; i < budget; i++)
        {
            cancel.ThrowIfCancellationRequested();
            int next = sampler.Sample(logits);
            if (stopTokens.Contains(next)) { finished?.Invoke(FinishReason.Stop); yield break; }
            yield return next;
            if (i + 1 == budget) break;
            model.Embed([next], x);
            model.Forward(x, 1, state, logits);
        }
        finished?.Invoke(FinishReason.Length);
    }

    /// <summary>Prompt tokens as embedding rows [tokens, dim].</summary>
    public float[] EmbedTokens(ReadOnlySpan<int> tokens)
    {
        var rows = new float[tokens.Length * model.Config.Dim];
        model.Embed(tokens, rows);
        return rows;
    }
}

/// <summary>
/// Turns decoded pieces into text as they arrive: bytes are held until they form whole UTF-8 characters,
/// and single-byte pieces that are control characters (other than whitespace) are dropped, as run.c's
/// safe_printf does.
/// </summary>
public sealed class TextStream(ITokenizer tokenizer)
{
    private readonly Decoder _utf8 = new UTF8Encoding(false, false).GetDecoder();
    private readonly char[] _chars = new char[64];
    private int _previous = -1;

    /// <summary>Starts after <paramref name="previous"/> (e.g. the last prompt token), which affects the first piece.</summary>
    public TextStream After(int previous) { _previous = previous; return this; }

    /// <summary>The text that token adds (possibly empty while a character is incomplete).</summary>
    public string Push(int token)
    {
        ReadOnlySpan<byte> piece = tokenizer.DecodePiece(_previous, token);
        _previous = token;
        if (piece.Length == 1 && piece[0] < 0x20 && piece[0] is not ((byte)'\n' or (byte)'\t' or (byte)'\r' or 0x0B or 0x0C)) return "";
        var sb = new StringBuilder();
        while (!piece.IsEmpty)
        {
            int take = Math.Min(piece.Length, 32);
            int n = _utf8.GetChars(piece[..take], _chars, flush: false);
            sb.Append(_chars, 0, n);
            piece = piece[take..];
        }
        return sb.ToString();
    }

    /// <summary>Whatever incomplete character remains, as U+FFFD.</summary>
    public string Flush()
    {
        int n = _utf8.GetChars(ReadOnlySpan<byte>.Empty, _chars, flush: true);
        return new string(_chars, 0, n);
    }
}
