using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using LoPAProxy.Engine.Formats;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Engine.Tests.Tokenizers;

/// <summary>Our tokenizer.json BPE against @lenml/tokenizers (a port of Hugging Face's) on the real Llama-3 tokenizer.</summary>
public class HfBpeTokenizerTests
{
    public static string Llama3Json => Path.Combine(Node.Directory, "node_modules", "@lenml", "tokenizer-llama3", "models", "tokenizer.json");

    private static IEnumerable<string> Corpus()
    {
        var rng = new Random(2024);
        string[] atoms =
        {
            "Hello", "world", "don't", "DON'T", "we'LL", "it's", "I'm", "they've", "You'd", "12345678", "3.14159", "1,000,000", "0x1F",
            "naïve", "café", "Ünïcödé", "résumé", "日本語のテキスト", "中文", "한국어", "Привет", "مرحبا", "שלום", "हिन्दी", "ελληνικά",
            "😀", "👩‍💻", "🇫🇷", "𝒜𝒷𝒸", "𝟘𝟙𝟚", "e\u0301", "\u00A0", "\u3000", "\t", "\n", "\r\n", "  ", "   \n\n  ", "\n\n\n",
            "def f(x):\n    return x * 2", "if (a && b) { return; }", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<tag>", "a--b", "...", "?!", "$100", "50%",
            "http://example.com/path?q=1", "snake_case_name", "CamelCaseName", "x²", "½", "Ⅻ", "©", "™", "\u200B", "'", "''", "'s'", " 's",
        };
        foreach (string a in atoms) yield return a;
        for (int i = 0; i < 1500; i++)
        {
            var sb = new StringBuilder();
            for (int w = 0, n = rng.Next(1, 10); w < n; w++)
            {
                sb.Append(atoms[rng.Next(atoms.Length)]);
                sb.Append(rng.Next(6) switch { 0 => "", 1 => "  ", 2 => "\n", _ => " " });
            }
            yield return sb.ToString();
        }
        // Real text: GLUE sentences, MBPP prompts and code, HumanEval prompts.
        string data = SharedFiles.Path_("data");
        foreach (string line in File.ReadLines(Path.Combine(data, "glue", "SST-2", "dev.tsv")).Skip(1).Take(400)) yield return line.Split('\t')[0];
        foreach (string line in File.ReadLines(Path.Combine(data, "glue", "RTE", "dev.tsv")).Skip(1).Take(200)) yield return line.Split('\t')[1];
        foreach (string line in File.ReadLines(Path.Combine(data, "mbpp", "mbpp.jsonl")).Take(400))
        {
            using var doc = JsonDocument.Parse(line);
            yield return doc.RootElement.GetProperty("text").GetString()!;
            yield return doc.RootElement.GetProperty("code").GetString()!;
        }
        using var gz = new GZipStream(File.OpenRead(Path.Combine(data, "humaneval", "HumanEval.jsonl.gz")), CompressionMode.Decompress);
        using var reader = new StreamReader(gz);
        while (reader.ReadLine() is { } line)
        {
            using var doc = JsonDocument.Parse(line);
            yield return doc.RootElement.GetProperty("prompt").GetString()!;
        }
    }

    [Fact]
    public void Matches_huggingface_tokenizers_on_llama3_over_thousands_of_strings()
    {
        List<string> corpus = Corpus().ToList();
        Assert.True(corpus.Count > 3000, $"corpus has {corpus.Count} strings");
        string input = Path.Combine(TempDir.Create(), "texts.json");
        File.WriteAllText(input, JsonSerializer.Serialize(corpus));
        int[][] expected = JsonSerializer.Deserialize<int[][]>(Node.Run("hf-tokenize.mjs", input))!;
        var tok = HfBpeTokenizer.Load(Llama3Json);
        int mismatches = 0;
        var report = new StringBuilder();
        for (int i = 0; i < corpus.Count; i++)
        {
            int[] ours = tok.Encode(corpus[i], addBos: false, addEos: false);
            if (ours.SequenceEqual(expected[i])) continue;
            if (mismatches++ >= 5) continue;
            string text = JsonSerializer.Serialize(corpus[i]);
            report.AppendLine(CultureInfo.InvariantCulture,
                $"{text}: expected [{string.Join(",", expected[i])}] got [{string.Join(",", ours)}]");
        }
        Assert.True(mismatches == 0, $"{mismatches} of {corpus.Count} strings differ:\n{report}");
    }

    [Fact]
    public void Decoding_round_trips_and_special_tokens_are_known()
    {
        var tok = HfBpeTokenizer.Load(Llama3Json);
        Assert.Equal(128256, tok.VocabSize);
        Assert.Equal(128000, tok.BosId);
        foreach (string s in new[] { "Hello world", "naïve café 日本語 😀", "def f(x):\n    return x", "  leading and trailing  " })
        {
            int[] ids = tok.Encode(s, addBos: true, addEos: false);
            Assert.Equal(128000, ids[0]);
            Assert.Equal(s, ((ITokenizer)tok).Decode(ids));
        }
    }

    [Fact]
    public void Unsupported_tokenizer_files_are_refused_clearly()
    {
        string dir = TempDir.Create(), path = Path.Combine(dir, "tokenizer.json");
        File.WriteAllText(path, """{"model":{"type":"Unigram","vocab":[]}}""");
        Assert.Contains("Unigram", Assert.Throws<TensorFileException>(() => HfBpeTokenizer.Load(path)).Message);
        File.WriteAllText(path, """{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"pre_tokenizer":{"type":"Metaspace"}}""");
        Assert.Contains("Metaspace", Assert.Throws<TensorFileException>(() => HfBpeTokenizer.Load(path)).Message);
        File.WriteAllText(path, "{ not json");
        Assert.Throws<TensorFileException>(() => HfBpeTokenizer.Load(path));
    }
}
