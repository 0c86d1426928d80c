using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using LoPAProxy.Engine.Formats;

namespace LoPAProxy.Engine.Tokenizers;

/// <summary>
/// Hugging Face tokenizer.json with a byte-level BPE model (GPT-2, Llama-3, Qwen2 style):
/// added tokens matched in the raw text first; optional NFC/NFKC normaliser; pre-tokenisers Split(regex,
/// Isolated) and ByteLevel (optionally with the GPT-2 regex and a prefix space); BPE by merge rank with
/// ignore_merges; ByteLevel decoding. Anything else in the file is refused with a clear error rather than
/// tokenised differently. Regexes run with code-point semantics (as the Rust and JS implementations do),
/// although .NET's Regex works on UTF-16 units: characters outside the BMP are matched through a one-unit stand-in
/// of the same class.
/// </summary>
public sealed class HfBpeTokenizer : ITokenizer
{
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    private static readonly char[] ByteToChar = BuildByteToChar();
    private static readonly Dictionary<char, byte> CharToByte = ByteToChar.Select((c, b) => (c, b)).ToDictionary(x => x.c, x => (byte)x.b);

    private readonly Dictionary<string, int> _vocab;
    private readonly string[] _idToToken;
    private readonly Dictionary<(int, int), (int Merged, int Rank)> _merges;
    /// <summary>Special tokens that mark a sequence's start and end when the file names none.</summary>
    private static readonly string[] BosCandidates = ["<|begin_of_text|>", "<s>", "<|endoftext|>"];
    private static readonly string[] EosCandidates = ["<|end_of_text|>", "</s>", "<|endoftext|>"];
    private readonly Dictionary<string, int> _added;
    private readonly HashSet<int> _addedIds;
    private readonly Regex? _addedSplit;
    private readonly List<Regex> _splits = new();
    private readonly bool _byteLevelPrefixSpace, _ignoreMerges;
    private readonly NormalizationForm? _normalization;
    private readonly ConcurrentDictionary<string, int[]> _wordCache = new(StringComparer.Ordinal);

    public int VocabSize { get; }
    public int BosId { get; }
    public int EosId { get; }

    private HfBpeTokenizer(JsonElement root, string file, string? bos, string? eos)
    {
        JsonElement model = root.GetProperty("model");
        if (Str(model, "type") != "BPE") throw new TensorFileException(file, $"model type '{Str(model, "type")}' is not supported (BPE only)");
        if (model.TryGetProperty("byte_fallback", out var bf) && bf.ValueKind == JsonValueKind.True) throw new TensorFileException(file, "byte_fallback BPE (SentencePiece-style) is not supported here; use the llama2.c tokenizer.bin");
        _ignoreMerges = model.TryGetProperty("ignore_merges", out var im) && im.ValueKind == JsonValueKind.True;
        _vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (JsonProperty p in model.GetProperty("vocab").EnumerateObject()) _vocab[p.Name] = p.Value.GetInt32();
        _added = new Dictionary<string, int>(StringComparer.Ordinal);
        if (root.TryGetProperty("added_tokens", out JsonElement added) && added.ValueKind == JsonValueKind.Array)
            foreach (JsonElement a in added.EnumerateArray()) _added[a.GetProperty("content").GetString()!] = a.GetProperty("id").GetInt32();
        _addedIds = _added.Values.ToHashSet();
        int size = Math.Max(_vocab.Count == 0 ? 0 : _vocab.Values.Max(), _added.Count == 0 ? 0 : _added.Values.Max()) + 1;
        _idToToken = new string[size];
        foreach (var (t, i) in _vocab) _idToToken[i] = t;
        foreach (var (t, i) in _added) _idToToken[i] = t;
        VocabSize = size;

        _merges = new Dictionary<(int, int), (int, int)>();
        int rank = 0;
        foreach (JsonElement m in model.GetProperty("merges").EnumerateArray())
        {
            (string a, string b) = m.ValueKind == JsonValueKind.String
                ? m.GetString()!.Split(' ', 2) is [var x, var y] ? (x, y) : throw new TensorFileException(file, $"merge '{m.GetString()}' is not 'a b'")
                : (m[0].GetString()!, m[1].GetString()!);
            if (_vocab.TryGetValue(a, out int ia) && _vocab.TryGetValue(b, out int ib) && _vocab.TryGetValue(a + b, out int merged))
                _merges.TryAdd((ia, ib), (merged, rank));
            rank++;
        }
        if (_added.Count > 0)
            _addedSplit = new Regex(string.Join("|", _added.Keys.OrderByDescending(k => k.Length).Select(Regex.Escape)), RegexOptions.CultureInvariant);

        _normalization = ParseNormalizer(root.TryGetProperty("normalizer", out var n) ? n : default, file);
        bool byteLevel = false;
        ParsePreTokenizer(root.TryGetProperty("pre_tokenizer", out var pt) ? pt : default, file, ref byteLevel, ref _byteLevelPrefixSpace);
        if (!byteLevel) throw new TensorFileException(file, "only byte-level BPE is supported (no ByteLevel pre-tokenizer found)");
        if (root.TryGetProperty("decoder", out var dec) && dec.ValueKind == JsonValueKind.Object && Str(dec, "type") is not ("ByteLevel" or null))
            throw new TensorFileException(file, $"decoder '{Str(dec, "type")}' is not supported (ByteLevel only)");
        BosId = bos != null && _added.TryGetValue(bos, out int b1) ? b1 : FirstAdded(BosCandidates);
        EosId = eos != null && _added.TryGetValue(eos, out int e1) ? e1 : FirstAdded(EosCandidates);
    }

    /// <summary>Loads tokenizer.json; special tokens come from tokenizer_config.json beside it when present.</summary>
    public static HfBpeTokenizer Load(string path)
    {
        string? bos = null, eos = null;
        string config = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "tokenizer_config.json");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            if (File.Exists(config))
            {
                using var cfg = JsonDocument.Parse(File.ReadAllBytes(config));
                bos = SpecialToken(cfg.RootElement, "bos_token");
                eos = SpecialToken(cfg.RootElement, "eos_token");
            }
            return new HfBpeTokenizer(doc.RootElement, path, bos, eos);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new TensorFileException(path, $"not a usable tokenizer.json: {e.Message}", e);
        }
    }

    private static string? SpecialToken(JsonElement cfg, string key) =>
        !cfg.TryGetProperty(key, out var v) ? null : v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) => c.GetString(),
            _ => null,
        };

    private static string? Str(JsonElement o, string key) => o.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static NormalizationForm? ParseNormalizer(JsonElement n, string file)
    {
        if (n.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) return null;
        return Str(n, "type") switch
        {
            "NFC" => NormalizationForm.FormC,
            "NFKC" => NormalizationForm.FormKC,
            "Sequence" when n.GetProperty("normalizers").GetArrayLength() == 0 => null,
            "Sequence" when n.GetProperty("normalizers").GetArrayLength() == 1 => ParseNormalizer(n.GetProperty("normalizers")[0], file),
            var t => throw new TensorFileException(file, $"normalizer '{t}' is not supported (NFC, NFKC)"),
        };
    }

    private void ParsePreTokenizer(JsonElement p, string file, ref bool byteLevel, ref bool prefixSpace)
    {
        if (p.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) return;
        switch (Str(p, "type"))
        {
            case "Sequence":
                foreach (JsonElement e in p.GetProperty("pretokenizers").EnumerateArray()) ParsePreTokenizer(e, file, ref byteLevel, ref prefixSpace);
                break;
            case "Split":
                if (Str(p, "behavior") != "Isolated" || (p.TryGetProperty("invert", out var inv) && inv.ValueKind == JsonValueKind.True))
                    throw new TensorFileException(file, $"Split behaviour '{Str(p, "behavior")}' is not supported (Isolated)");
                JsonElement pattern = p.GetProperty("pattern");
                string regex = pattern.TryGetProperty("Regex", out var r) ? r.GetString()! : Regex.Escape(pattern.GetProperty("String").GetString()!);
                _splits.Add(new Regex(regex, RegexOptions.CultureInvariant));
                break;
            case "ByteLevel":
                byteLevel = true;
                prefixSpace = p.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.True;
                if (!p.TryGetProperty("use_regex", out var ur) || ur.ValueKind == JsonValueKind.True) _splits.Add(new Regex(Gpt2Pattern, RegexOptions.CultureInvariant));
                break;
            default:
                throw new TensorFileException(file, $"pre-tokenizer '{Str(p, "type")}' is not supported (Sequence, Split, ByteLevel)");
        }
    }

    public int[] Encode(string text, bool addBos, bool addEos, bool continuation = false)
    {
        var ids = new List<int>();
        if (addBos && BosId >= 0) ids.Add(BosId);
        int pos = 0;
        if (_addedSplit != null)
        {
            foreach (Match m in _addedSplit.Matches(text))
            {
                EncodeSegment(text[pos..m.Index], ids, continuation || pos > 0);
                ids.Add(_added[m.Value]);
                pos = m.Index + m.Length;
            }
        }

        EncodeSegment(text[pos..], ids, continuation || pos > 0);
        if (addEos && EosId >= 0) ids.Add(EosId);
        return ids.ToArray();
    }

    private void EncodeSegment(string text, List<int> ids, bool continuation)
    {
        if (text.Length == 0) return;
        if (_normalization is { } form) text = text.Normalize(form);
        if (_byteLevelPrefixSpace && !continuation && !text.StartsWith(' ')) text = " " + text;
        IEnumerable<string> pieces = new[] { text };
        foreach (Regex split in _splits) pieces = pieces.SelectMany(p => SplitIsolated(p, split)).ToList();
        foreach (string piece in pieces) ids.AddRange(_wordCache.Count < 200_000 ? _wordCache.GetOrAdd(piece, EncodeWord) : EncodeWord(piece));
    }

    /// <summary>Matches and the gaps between them, each its own piece, with code-point semantics.</summary>
    private static IEnumerable<string> SplitIsolated(string text, Regex regex)
    {
        // One UTF-16 unit per code point: astral characters become a BMP stand-in of the same class.
        var proxy = new StringBuilder(text.Length);
        var starts = new List<int>(text.Length + 1);
        for (int i = 0; i < text.Length;)
        {
            starts.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                UnicodeCategory cat = CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]));
                proxy.Append(cat switch
                {
                    UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                        or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => 'ª',
                    UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => '²',
                    _ => '¤',
                });
                i += 2;
            }
            else { proxy.Append(text[i]); i++; }
        }
        starts.Add(text.Length);
        string p = proxy.ToString();
        int last = 0;
        foreach (Match m in regex.Matches(p))
        {
            if (m.Length == 0) continue;
            if (m.Index > last) yield return text[starts[last]..starts[m.Index]];
            yield return text[starts[m.Index]..starts[m.Index + m.Length]];
            last = m.Index + m.Length;
        }
        if (last < p.Length) yield return text[starts[last]..];
    }

    private int[] EncodeWord(string piece)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(piece);
        var mapped = new StringBuilder(utf8.Length);
        foreach (byte b in utf8) mapped.Append(ByteToChar[b]);
        string word = mapped.ToString();
        if (_ignoreMerges && _vocab.TryGetValue(word, out int whole)) return new[] { whole };
        var symbols = new List<int>(word.Length);
        foreach (char c in word)
            symbols.Add(_vocab.TryGetValue(c.ToString(), out int id) ? id : throw new InvalidOperationException($"byte symbol '{c}' is missing from the vocabulary"));
        PairMerger.Merge(symbols, (a, b) => _merges.TryGetValue((a, b), out var m) ? (m.Merged, m.Rank) : null);
        return symbols.ToArray();
    }

    /// <summary>The id of the first of <paramref name="candidates"/> the file adds, or −1.</summary>
    private int FirstAdded(string[] candidates) =>
        candidates.Select(t => _added.GetValueOrDefault(t, -1)).FirstOrDefault(i => i >= 0, -1);

    public ReadOnlySpan<byte> DecodePiece(int previous, int token)
    {
        if ((uint)token >= (uint)_idToToken.Length || _idToToken[token] is null) throw new ArgumentOutOfRangeException(nameof(token), $"token {token} is not in the vocabulary");
        string t = _idToToken[token];
        if (_addedIds.Contains(token)) return Encoding.UTF8.GetBytes(t);
        var bytes = new byte[t.Length];
        for (int i = 0; i < t.Length; i++) bytes[i] = CharToByte.TryGetValue(t[i], out byte b) ? b : (byte)'?';
        return bytes;
    }

    /// <summary>GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards.</summary>
    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        var direct = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range('¡', '¬' - '¡' + 1)).Concat(Enumerable.Range('®', 'ÿ' - '®' + 1)).ToHashSet();
        int extra = 0;
        for (int b = 0; b < 256; b++) map[b] = direct.Contains(b) ? (char)b : (char)(256 + extra++);
        return map;
    }
}
