using System.Text;
using System.Text.Json;
using LoPAProxy.Engine.Formats;

namespace LoPAProxy.Engine.Tokenizers;

/// <summary>
/// The Universal Sentence Encoder lite tokenizer as its TF.js package runs it: NFKC; when non-empty, prepend
/// '▁' and turn every space into '▁'; Viterbi over all vocabulary pieces that prefix the remaining code points
/// (scores summed; ties go to the later start; no match → a one-symbol edge with id 0 and score 0);
/// backtrack, reverse, collapse runs of id 0 into one. Ids 0–5 are reserved and never matched.
/// </summary>
public sealed class UseLiteTokenizer
{
    private const int Reserved = 6;
    private const char Separator = '\u2581';

    private sealed class Node
    {
        public Dictionary<int, Node>? Children;
        public int Id = -1;      // piece ending here
        public double Score;
        public int Length;       // code points
    }

    private readonly Node _root = new();
    private readonly string[] _pieces;

    public int VocabSize => _pieces.Length;

    public UseLiteTokenizer(IReadOnlyList<(string Piece, double Score)> vocabulary)
    {
        _pieces = vocabulary.Select(v => v.Piece).ToArray();
        for (int id = Reserved; id < vocabulary.Count; id++)
        {
            Node node = _root;
            int length = 0;
            foreach (Rune r in vocabulary[id].Piece.EnumerateRunes())
            {
                node.Children ??= new Dictionary<int, Node>();
                if (!node.Children.TryGetValue(r.Value, out Node? child)) node.Children[r.Value] = child = new Node();
                node = child;
                length++;
            }
            if (length == 0) continue;
            node.Id = id; node.Score = vocabulary[id].Score; node.Length = length;
        }
    }

    /// <summary>vocab.json: an array of [piece, score].</summary>
    public static UseLiteTokenizer Load(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            // Seven pieces in the published vocab.json (those with ':') have a null score; the package's JavaScript
            // adds scores with '+', where null counts as 0, so they score 0 — the best possible. We do the same.
            var vocab = doc.RootElement.EnumerateArray().Select(e => (e[0].GetString()!, e[1].ValueKind == JsonValueKind.Null ? 0.0 : e[1].GetDouble())).ToList();
            if (vocab.Count <= Reserved) throw new TensorFileException(path, $"vocabulary of {vocab.Count} pieces is too small");
            return new UseLiteTokenizer(vocab);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or IndexOutOfRangeException or FormatException)
        {
            throw new TensorFileException(path, $"not a USE vocabulary (array of [piece, score]): {e.Message}", e);
        }
    }

    public int[] Encode(string text)
    {
        string normalized = text.Normalize(NormalizationForm.FormKC);
        if (normalized.Length > 0) normalized = Separator + normalized.Replace(' ', Separator);
        int[] symbols = normalized.EnumerateRunes().Select(r => r.Value).ToArray();
        int n = symbols.Length;
        // Lattice: for each end position, the best score and the piece ending there. JS iterates end positions
        // ascending, and for each end the candidate starts ascending; '>=' lets later candidates win ties.
        var best = new double[n + 1];
        var words = new int[n + 1];
        var candidates = new List<(int Start, int Id, double Score, int Length)>[n + 1];
        for (int i = 0; i < n; i++)
        {
            Node? node = _root.Children != null && _root.Children.TryGetValue(symbols[i], out var first) ? first : null;
            bool any = false;
            for (int j = i; j < n && node != null; j++)
            {
                if (node.Id >= 0) { (candidates[i + node.Length] ??= new()).Add((i, node.Id, node.Score, node.Length)); any = true; }
                node = j + 1 < n && node.Children != null && node.Children.TryGetValue(symbols[j + 1], out var next) ? next : null;
            }
            if (!any) (candidates[i + 1] ??= new()).Add((i, 0, 0.0, 1));
        }
        for (int end = 0; end <= n; end++)
        {
            if (candidates[end] is not { } list) continue;
            foreach (var c in list.OrderBy(c => c.Start))
            {
                double score = c.Score + best[end - c.Length];
                if (best[end] == 0 || score >= best[end]) { best[end] = score; words[end] = c.Id; }
            }
        }
        var reversed = new List<int>();
        // Backtrack by each chosen piece's length in UTF-16 units, as the JS code does (no piece is outside the BMP).
        for (int pos = n; pos > 0; pos -= Math.Max(1, _pieces[words[pos]].Length)) reversed.Add(words[pos]);
        var merged = new List<int>(reversed.Count);
        bool previousUnknown = false;
        foreach (int id in reversed)
        {
            if (!(previousUnknown && id == 0)) merged.Add(id);
            previousUnknown = id == 0;
        }
        merged.Reverse();
        return merged.ToArray();
    }
}
