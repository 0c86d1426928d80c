using System.Text;
using LoPAProxy.Engine.Formats.Llama2c;

namespace LoPAProxy.Engine.Tokenizers;

/// <summary>
/// SentencePiece-BPE as llama2.c's run.c applies it to a tokenizer.bin vocabulary: optional BOS (id 1),
/// a dummy-prefix " " token when the text is non-empty, one token per UTF-8 character (or its bytes via
/// &lt;0xXX&gt; fallback, ids byte + 3), then repeatedly merge the adjacent pair whose concatenation is
/// in the vocabulary with the highest score, the leftmost on ties. The merges run on a heap over a
/// linked list (<see cref="PairMerger"/>, O(n log n)) instead of run.c's O(n²) rescans; the result is the same.
/// Decoding strips the leading space of the piece after BOS and maps &lt;0xXX&gt; pieces to raw bytes.
/// </summary>
public sealed class SentencePieceBpeTokenizer : ITokenizer
{
    private readonly byte[][] _pieces;
    private readonly float[] _scores;
    private readonly Dictionary<string, int> _lookup; // piece bytes as Latin-1 string → first id
    private readonly byte[]?[] _byteTokens;            // id → the raw byte for <0xXX> pieces

    public int VocabSize => _pieces.Length;
    public int BosId => 1;
    public int EosId => 2;

    public SentencePieceBpeTokenizer(Llama2cTokenizerFile file)
    {
        _pieces = file.Pieces;
        _scores = file.Scores;
        _lookup = new Dictionary<string, int>(_pieces.Length, StringComparer.Ordinal);
        _byteTokens = new byte[]?[_pieces.Length];
        for (int i = 0; i < _pieces.Length; i++)
        {
            _lookup.TryAdd(Encoding.Latin1.GetString(_pieces[i]), i);
            if (_pieces[i] is [(byte)'<', (byte)'0', (byte)'x', var h, var l, (byte)'>'] && Hex(h) >= 0 && Hex(l) >= 0)
                _byteTokens[i] = new[] { (byte)(Hex(h) * 16 + Hex(l)) };
        }
    }

    public static SentencePieceBpeTokenizer Load(string path, int? vocabSize = null) => new(Llama2cTokenizerFile.Load(path, vocabSize));

    private static int Hex(byte c) => c switch { >= (byte)'0' and <= (byte)'9' => c - '0', >= (byte)'A' and <= (byte)'F' => c - 'A' + 10, _ => -1 };

    private int Lookup(ReadOnlySpan<byte> bytes) => _lookup.TryGetValue(Encoding.Latin1.GetString(bytes), out int id) ? id : -1;

    public int[] Encode(string text, bool addBos, bool addEos, bool continuation = false)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(text);
        var tokens = new List<int>(utf8.Length + 3);
        if (addBos) tokens.Add(BosId);
        if (utf8.Length > 0 && !continuation)
        {
            int space = Lookup(" "u8);
            if (space >= 0) tokens.Add(space);
        }
        // One token per UTF-8 character (at most 4 bytes), else its bytes.
        for (int i = 0; i < utf8.Length;)
        {
            int len = 1;
            while (i + len < utf8.Length && (utf8[i + len] & 0xC0) == 0x80 && len < 4) len++;
            int id = Lookup(utf8.AsSpan(i, len));
            if (id >= 0) tokens.Add(id);
            else for (int b = 0; b < len; b++) tokens.Add(Math.Min(utf8[i + b] + 3, VocabSize - 1));
            i += len;
        }
        Merge(tokens);
        if (addEos) tokens.Add(EosId);
        return tokens.ToArray();
    }

    private void Merge(List<int> tokens) => PairMerger.Merge(tokens, (left, right) =>
    {
        int merged = Lookup(Concat(_pieces[left], _pieces[right]));
        return merged >= 0 ? (merged, -_scores[merged]) : null;
    });

    private static byte[] Concat(byte[] a, byte[] b)
    {
        var r = new byte[a.Length + b.Length];
        a.CopyTo(r, 0);
        b.CopyTo(r, a.Length);
        return r;
    }

    public ReadOnlySpan<byte> DecodePiece(int previous, int token)
    {
        if ((uint)token >= (uint)_pieces.Length) throw new ArgumentOutOfRangeException(nameof(token), $"token {token} outside vocabulary of {_pieces.Length}");
        if (_byteTokens[token] is { } raw) return raw;
        ReadOnlySpan<byte> piece = _pieces[token];
        if (previous == BosId && piece.Length > 0 && piece[0] == (byte)' ') piece = piece[1..];
        return piece;
    }
}
