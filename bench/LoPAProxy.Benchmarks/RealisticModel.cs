using System.Text;
using LoPAProxy.Core.FoundationModels;
using LoPAProxy.Engine.Formats.Gguf;
using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// Foundation-model files at real dimensions for `compare realistic`: what the proxy reads of a model — its
/// vocabulary and token-embedding table — with seeded random F16 weights (a real checkpoint's table is F16 or BF16),
/// written once to the temp folder. "llama2": Llama-2-7B's 32,000-piece vocabulary from ../shared/models
/// /llama2-tokenizer, d = 4,096, context 4,096 (table 262 MB). "llama3": Llama-3-8B's sizes — 128,256 pieces,
/// d = 4,096, context 8,192 (table 1.05 GB) — with a synthetic SentencePiece-BPE vocabulary: Llama-2's pieces plus
/// concatenations of two of them, scored below every real merge (no Llama-3 tokenizer is at hand).
/// </summary>
public static class RealisticModel
{
    public const int Dim = 4096;

    public static string PathOf(string variant)
    {
        string folder = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(),
            "lopa-realistic")).FullName;
        string path = Path.Combine(folder, $"{variant}-d{Dim}.gguf");
        if (File.Exists(path)) return path;
        Llama2cTokenizerFile llama2 = Llama2cTokenizerFile.Load(Path.Combine(RepoPaths.RepoDir(), "..",
            "shared", "models", "llama2-tokenizer", "tokenizer.bin"), 32_000);
        (Llama2cTokenizerFile vocabulary, uint context) = variant switch
        {
            "llama2" => (llama2, 4096u),
            "llama3" => (Extended(llama2, 128_256), 8192u),
            _ => throw new ArgumentException($"variant '{variant}': llama2 or llama3"),
        };
        Console.WriteLine($"writing {path} ({vocabulary.Pieces.Length} × {Dim} F16) …");
        var writer = new GgufWriter()
            .Add("general.architecture", "llama")
            .Add("general.name", $"{variant}-size synthetic")
            .Add("llama.context_length", context)
            .Add("llama.embedding_length", (uint)Dim);
        Llama2cToGguf.AddTokenizer(writer, vocabulary);
        writer.AddMatrix("token_embd.weight", GgmlType.F16, vocabulary.Pieces.Length, Dim, RandomRow).Write(path);
        return path;
    }

    /// <summary>Row <paramref name="token"/>: seeded by the token, uniform in ±0.05 (Llama-2's table has a standard
    /// deviation of about 0.02).</summary>
    private static void RandomRow(int token, Span<float> row)
    {
        var random = new Random(token);
        for (int i = 0; i < row.Length; i++) row[i] = (random.NextSingle() - 0.5f) * 0.1f;
    }

    /// <summary>Llama-2's vocabulary grown to <paramref name="size"/> pieces by joining two of its word pieces.
    /// </summary>
    private static Llama2cTokenizerFile Extended(Llama2cTokenizerFile baseVocabulary, int size)
    {
        var pieces = new List<byte[]>(baseVocabulary.Pieces);
        var scores = new List<float>(baseVocabulary.Scores);
        var seen = new HashSet<string>(pieces.Select(p => Convert.ToBase64String(p)));
        var random = new Random(3);
        float score = baseVocabulary.Scores.Min() - 1;
        while (pieces.Count < size)
        {
            byte[] a = baseVocabulary.Pieces[random.Next(259, baseVocabulary.Pieces.Length)];
            byte[] b = baseVocabulary.Pieces[random.Next(259, baseVocabulary.Pieces.Length)];
            byte[] joined = a.Concat(b).ToArray();
            if (b.Length > 0 && b[0] == (byte)' ' || !seen.Add(Convert.ToBase64String(joined))) continue;
            pieces.Add(joined);
            scores.Add(score);
            score -= 1;
        }
        return new Llama2cTokenizerFile(pieces.Max(p => p.Length), pieces.ToArray(), scores.ToArray());
    }

    /// <summary>About <paramref name="tokens"/> tokens of English (SST-2 sentences) and how many the model's
    /// tokenizer makes of it.</summary>
    public static (string Text, int Tokens) Prompt(FoundationModelVocabulary model, int tokens)
    {
        string source = Path.Combine(RepoPaths.RepoDir(), "..", "shared", "data", "glue", "SST-2",
            "train.tsv");
        var text = new StringBuilder();
        foreach (string line in File.ReadLines(source).Skip(1))
        {
            text.Append(line[..line.LastIndexOf('\t')].Trim()).Append(". ");
            if (text.Length > tokens * 8) break;
        }
        ITokenizer tokenizer = model.Tokenizer;
        int[] ids = tokenizer.Encode(text.ToString(), addBos: false, addEos: false);
        string cut = tokenizer.Decode(ids.AsSpan(0, Math.Min(tokens, ids.Length))).Trim();
        return (cut, tokenizer.Encode(cut, addBos: false, addEos: false).Length);
    }
}
