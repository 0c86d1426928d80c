using System.Globalization;
using System.Text;
using System.Text.Json;
using LoPAProxy.Engine.Formats;

namespace LoPAProxy.Engine.Tokenizers;

/// <summary>
/// BERT's tokenizer: BasicTokenizer (clean control characters, space out CJK ideographs, optional lowercase
/// and accent stripping, split on whitespace and punctuation) then WordPiece (greedy longest match,
/// "##" continuations, words over 100 characters → [UNK]), framed as [CLS] … [SEP].
/// Loads a vocab.txt (with do_lower_case from tokenizer_config.json beside it) or a tokenizer.json whose
/// model is WordPiece.
/// Ours, not a library's, because the one on NuGet (Microsoft.ML.Tokenizers 2.0.1's BertTokenizer) does not match
/// Hugging Face: it drops symbols and deletes \t \n \r (DESIGN §4); this one equals HF's on the real MiniLM
/// vocabulary over 200+ sentences (OnnxEncoderTests.Token_ids_equal_hugging_face_tokenizers_on_the_real_vocabulary).
/// </summary>
public sealed class WordPieceTokenizer
{
    private const int MaxCharsPerWord = 100;
    private readonly Dictionary<string, int> _vocab;
    private readonly bool _lowercase, _stripAccents;

    public int ClsId { get; }
    public int SepId { get; }
    public int UnkId { get; }
    public int VocabSize => _vocab.Count;

    public WordPieceTokenizer(IReadOnlyDictionary<string, int> vocab, bool lowercase, bool? stripAccents = null)
    {
        _vocab = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        _lowercase = lowercase;
        _stripAccents = stripAccents ?? lowercase; // BERT strips accents whenever it lowercases, unless told otherwise
        int Special(string t) => _vocab.TryGetValue(t, out int id) ? id : throw new TensorFileException("vocab",
            $"the vocabulary has no {t}");
        ClsId = Special("[CLS]"); SepId = Special("[SEP]"); UnkId = Special("[UNK]");
    }

    /// <summary>The same vocabulary with lower-casing (and with it accent stripping) set explicitly.</summary>
    public WordPieceTokenizer WithLowercase(bool lowercase) => new(_vocab, lowercase);

    /// <summary>vocab.txt (one token per line, id = line number) or tokenizer.json with a WordPiece model.</summary>
    public static WordPieceTokenizer Load(string path)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        try
        {
            if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
                JsonElement model = doc.RootElement.GetProperty("model");
                if (model.GetProperty("type").GetString() != "WordPiece")
                {
                    throw new TensorFileException(path,
                    "the tokenizer model is not WordPiece");
                }

                var vocab = model.GetProperty("vocab").EnumerateObject().ToDictionary(p => p.Name, p =>
                    p.Value.GetInt32(), StringComparer.Ordinal);
                bool lower = true; bool? strip = null;
                if (doc.RootElement.TryGetProperty("normalizer", out var n) && n.ValueKind == JsonValueKind.Object)
                {
                    if (n.TryGetProperty("lowercase", out var l)) lower = l.ValueKind == JsonValueKind.True;
                    if (n.TryGetProperty("strip_accents", out var s)
                        && s.ValueKind != JsonValueKind.Null)
                    {
                        strip = s.ValueKind == JsonValueKind.True;
                    }
                }
                return new WordPieceTokenizer(vocab, lower, strip);
            }
            var lines = File.ReadAllLines(path);
            var v = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < lines.Length; i++) v.TryAdd(lines[i].TrimEnd('\r'), i);
            bool lowercase = true;
            string cfg = Path.Combine(dir, "tokenizer_config.json");
            if (File.Exists(cfg))
            {
                using var c = JsonDocument.Parse(File.ReadAllBytes(cfg));
                if (c.RootElement.TryGetProperty("do_lower_case",
                    out var l))
                {
                    lowercase = l.ValueKind == JsonValueKind.True;
                }
            }
            return new WordPieceTokenizer(v, lowercase);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new TensorFileException(path, $"not a usable WordPiece vocabulary: {e.Message}", e);
        }
    }

    /// <summary>[CLS] pieces… [SEP], cut to <paramref name="maxTokens"/> (the [SEP] is kept).</summary>
    public int[] Encode(string text, int maxTokens)
    {
        var ids = new List<int> { ClsId };
        foreach (string word in BasicTokens(text))
        {
            WordPiece(word, ids);
            if (ids.Count >= maxTokens - 1) break;
        }
        if (ids.Count > maxTokens - 1) ids.RemoveRange(maxTokens - 1, ids.Count - (maxTokens - 1));
        ids.Add(SepId);
        return ids.ToArray();
    }

    private IEnumerable<string> BasicTokens(string text)
    {
        var clean = new StringBuilder(text.Length);
        foreach (Rune r in text.EnumerateRunes())
        {
            int cp = r.Value;
            if (cp == 0 || cp == 0xFFFD || IsControl(r)) continue;
            if (IsWhitespace(r)) { clean.Append(' '); continue; }
            if (IsCjk(cp)) { clean.Append(' ').Append(r.ToString()).Append(' '); continue; }
            clean.Append(r.ToString());
        }
        foreach (string raw in clean.ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            string word = raw;
            if (_lowercase) word = word.ToLowerInvariant();
            if (_stripAccents)
            {
                var sb = new StringBuilder();
                foreach (char c in word.Normalize(NormalizationForm.FormD))
                    if (CharUnicodeInfo.GetUnicodeCategory(c) != UnicodeCategory.NonSpacingMark) sb.Append(c);
                word = sb.ToString();
            }
            var current = new StringBuilder();
            foreach (Rune r in word.EnumerateRunes())
            {
                if (IsPunctuation(r))
                {
                    if (current.Length > 0) { yield return current.ToString(); current.Clear(); }
                    yield return r.ToString();
                }
                else
                {
                    current.Append(r.ToString());
                }
            }
            if (current.Length > 0) yield return current.ToString();
        }
    }

    private void WordPiece(string word, List<int> ids)
    {
        int[] starts = StringInfoRunes(word);
        if (starts.Length - 1 > MaxCharsPerWord) { ids.Add(UnkId); return; }
        var pieces = new List<int>();
        int start = 0, n = starts.Length - 1;
        while (start < n)
        {
            int end = n, found = -1;
            while (start < end)
            {
                string sub = word[starts[start]..starts[end]];
                if (start > 0) sub = "##" + sub;
                if (_vocab.TryGetValue(sub, out int id)) { found = id; break; }
                end--;
            }
            if (found < 0) { ids.Add(UnkId); return; }
            pieces.Add(found);
            start = end;
        }
        ids.AddRange(pieces);
    }

    /// <summary>UTF-16 offsets of each code point, plus the end.</summary>
    private static int[] StringInfoRunes(string s)
    {
        var starts = new List<int>();
        for (int i = 0; i < s.Length; i += char.IsSurrogatePair(s, i) ? 2 : 1) starts.Add(i);
        starts.Add(s.Length);
        return starts.ToArray();
    }

    private static bool IsWhitespace(Rune r) => r.Value is ' ' or '\t' or '\n' or '\r'
        || Rune.GetUnicodeCategory(r) == UnicodeCategory.SpaceSeparator;

    private static bool IsControl(Rune r) => r.Value is not ('\t' or '\n' or '\r')
        && Rune.GetUnicodeCategory(r) is UnicodeCategory.Control or UnicodeCategory.Format;

    private static bool IsPunctuation(Rune r)
    {
        int cp = r.Value;
        if (cp is >= 33 and <= 47 or >= 58 and <= 64 or >= 91 and <= 96 or >= 123 and <= 126) return true;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
            or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    private static bool IsCjk(int cp) =>
        cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF or >= 0x2A700 and <= 0x2B73F
        or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;
}
