using System.Text;
using System.Text.Json;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Core.Tests;

public class EncoderTests
{
    public static string UseLiteDirectory => Path.Combine(Node.Directory, "node_modules", "@energetic-ai", "model-embeddings-en", "dist");

    internal static readonly Lazy<UseLiteEncoder> UseLite = new(() => UseLiteEncoder.Load(UseLiteDirectory));

    internal static List<string> Sentences()
    {
        var s = new List<string>
        {
            "The movie was great.", "The film was excellent.", "I am driving to the store.", "", " ", "!!!", "...?!", "—–", "12345 67890",
            "naïve café résumé", "Ünïcödé ŠŤŘÍÑĜ", "日本語のテキストです", "Привет, как дела?", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया",
            "Emoji 😀 and 👩‍💻 and 🇫🇷", "Math 𝒜𝒷𝒸 and ½ ﬁ ①", "tabs\tand\nnewlines\r\n", "control \u0001\u0007 chars", "  leading and trailing  ",
            "UPPER CASE SHOUTING", "MiXeD cAsE", "it's a 'quoted' \"string\"", "e-mail: someone@example.com", "https://example.com/a?b=c",
            "def f(x): return x * 2", "SELECT * FROM t WHERE a = 1;", "a", "Z", "the the the the the",
        };
        s.Add(string.Join(" ", Enumerable.Range(0, 200).Select(i => (i % 7) switch { 0 => "story", 1 => "about", 2 => "a", 3 => "little", 4 => "dog", 5 => "named", _ => "Rex" })));
        s.Add(new string('x', 3000));
        foreach (string line in File.ReadLines(SharedFiles.Path_("data", "glue", "SST-2", "dev.tsv")).Skip(1).Take(20)) s.Add(line.Split('\t')[0]);
        return s;
    }

    [Fact]
    public void Use_lite_matches_its_own_tfjs_runtime()
    {
        List<string> sentences = Sentences();
        string input = Path.Combine(TempDir.Create(), "sentences.json");
        File.WriteAllText(input, JsonSerializer.Serialize(sentences));
        using JsonDocument reference = JsonDocument.Parse(Node.Run("use-lite.mjs", input));
        JsonElement results = reference.RootElement.GetProperty("results");
        UseLiteEncoder encoder = UseLite.Value;
        var ours = new float[sentences.Count * 512];
        encoder.Encode(sentences, ours);
        var report = new StringBuilder();
        for (int i = 0; i < sentences.Count; i++)
        {
            int[] tfjsIds = results[i].GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            int[] ourIds = encoder.Tokenizer.Encode(InstanceText.Sanitize(sentences[i]));
            Assert.True(tfjsIds.SequenceEqual(ourIds), $"token ids differ for {JsonSerializer.Serialize(sentences[i])}: tfjs [{string.Join(",", tfjsIds)}] ours [{string.Join(",", ourIds)}]");
            JsonElement vector = results[i].GetProperty("vector");
            Assert.True(vector.ValueKind == JsonValueKind.Array, $"TF.js failed on {JsonSerializer.Serialize(sentences[i])}: {results[i].GetProperty("error")}");
            float[] theirs = vector.EnumerateArray().Select(e => e.GetSingle()).ToArray();
            double dot = 0, a = 0, b = 0;
            for (int k = 0; k < 512; k++) { dot += theirs[k] * ours[i * 512 + k]; a += theirs[k] * theirs[k]; b += ours[i * 512 + k] * ours[i * 512 + k]; }
            double cosine = dot / Math.Sqrt(a * b);
            if (cosine < 0.9999) report.AppendLine($"{JsonSerializer.Serialize(sentences[i])}: cosine {cosine:F6}");
        }
        Assert.True(report.Length == 0, report.ToString());
        // DESIGN §5's published figures.
        Assert.Equal(-0.001019f, ours[0], 5);
        Assert.Equal(new[] { 34, 888, 33, 318, 6 }, encoder.Tokenizer.Encode("The movie was great."));
    }

    [Fact]
    public void Use_lite_reference_similarities()
    {
        var v = new float[3 * 512];
        UseLite.Value.Encode(new[] { "The movie was great.", "The film was excellent.", "I am driving to the store." }, v);
        double Cos(int i, int j) { double d = 0; for (int k = 0; k < 512; k++) d += v[i * 512 + k] * v[j * 512 + k]; return d; }
        Assert.Equal(0.935915, Cos(0, 1), 4);
        Assert.Equal(0.145963, Cos(0, 2), 4);
    }

    [Fact]
    public void Instance_text_is_sanitised_and_bounded()
    {
        Assert.Equal("a\uFFFDb", InstanceText.Sanitize("a\uD800b"));
        Assert.Equal("\uFFFD", InstanceText.Sanitize("\uDC00"));
        Assert.Equal("😀", InstanceText.Sanitize("😀"));
        Assert.Equal("", InstanceText.Sanitize(null));
        Assert.Equal(InstanceText.MaxChars, InstanceText.Sanitize(new string('y', 100_000)).Length);
        // Encoders accept anything: lone surrogates, control characters, huge input.
        var out1 = new float[512 * 3];
        UseLite.Value.Encode(new[] { "bad \uD800 surrogate", "\u0000\u0001\u0002", new string('é', 200_000) }, out1);
        Assert.All(out1, f => Assert.True(float.IsFinite(f)));
        Assert.Equal(128, UseLite.Value.Tokenize(new string('x', 1000) + " " + string.Join(" ", Enumerable.Repeat("word", 500))).Length);
    }

    [Fact]
    public void Fm_mean_is_the_mean_of_the_token_embedding_rows()
    {
        var tok = LoPAProxy.Engine.Tokenizers.SentencePieceBpeTokenizer.Load(SharedFiles.Path_("models", "stories260K", "tok512.bin"), 512);
        var model = LoPAProxy.Engine.Networks.Llama.LlamaModel.FromLlama2c(LoPAProxy.Engine.Formats.Llama2c.Llama2cCheckpoint.Load(SharedFiles.Path_("models", "stories260K", "stories260K.bin")));
        var enc = new FmMeanEncoder(tok, model.TokenEmbedding, 64);
        var v = new float[2 * 64];
        enc.Encode(new[] { "Tom had a red kite", "" }, v);
        int[] ids = tok.Encode("Tom had a red kite", false, false);
        for (int k = 0; k < 64; k++)
            Assert.Equal(ids.Average(id => (double)model.TokenEmbedding[id * 64 + k]), v[k], 5);
        Assert.All(v.Skip(64), f => Assert.Equal(0f, f));
    }
}
