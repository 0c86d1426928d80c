namespace LoPAProxy.Engine.Tokenizers;

/// <summary>Text ⇄ token ids. Decoding yields bytes: a token may carry part of a UTF-8 character.</summary>
public interface ITokenizer
{
    int VocabSize { get; }
    int BosId { get; }
    int EosId { get; }

    /// <param name="continuation">true for text that continues a sequence (SentencePiece then adds no dummy-prefix space).</param>
    int[] Encode(string text, bool addBos, bool addEos, bool continuation = false);

    /// <summary>The bytes token <paramref name="token"/> prints when it follows <paramref name="previous"/> (−1: none).</summary>
    ReadOnlySpan<byte> DecodePiece(int previous, int token);

    /// <summary>The text of a whole sequence, BOS and EOS left out (invalid UTF-8 becomes U+FFFD).</summary>
    string Decode(ReadOnlySpan<int> tokens)
    {
        var bytes = new List<byte>();
        int prev = -1;
        foreach (int t in tokens)
        {
            if (t != BosId && t != EosId) bytes.AddRange(DecodePiece(prev, t).ToArray());
            prev = t;
        }
        return System.Text.Encoding.UTF8.GetString(bytes.ToArray());
    }
}
