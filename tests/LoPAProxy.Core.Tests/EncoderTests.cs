using LoPAProxy.Core.Encoders;
using LoPAProxy.Engine.Formats.Embeddings;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Core.Tests;

public class EncoderTests
{
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
        s.Add(string.Join(" ", Enumerable.Range(0, 200).Select(i => (i % 7) switch
        {
            0 => "story",
            1 => "about",
            2 =>
            "a",
            3 => "little",
            4 => "dog",
            5 => "named",
            _ => "Rex"
        })));
        s.Add(new string('x', 3000));
        foreach (string line in File.ReadLines(SharedFiles.Path_("data", "glue", "SST-2",
            "dev.tsv")).Skip(1).Take(20))
        {
            s.Add(line.Split('\t')[0]);
        }

        return s;
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
        var minilm = Encoders.OnnxEncoderTests.MiniLm.Value;
        var out1 = new float[384 * 3];
        minilm.Encode(new[] { "bad \uD800 surrogate", "\u0000\u0001\u0002", new string('é', 200_000) }, out1);
        Assert.All(out1, f => Assert.True(float.IsFinite(f)));
        Assert.Equal(256, minilm.Tokenize(new string('x', 1000) + " " + string.Join(" ", Enumerable.Repeat("word",
            500))).Length);
        Assert.Equal(256 * InstanceText.MaxCharsPerToken, InstanceText.Bound(new string('y', 100_000), 256).Length);
    }

    [Fact]
    public void Fm_mean_is_the_mean_of_the_token_embedding_rows()
    {
        var tok = LoPAProxy.Engine.Tokenizers.SentencePieceBpeTokenizer.Load(SharedFiles.Path_("models", "stories260K",
            "tok512.bin"), 512);
        var model = LoPAProxy.Engine.Networks.Llama.LlamaModel.FromLlama2c(LoPAProxy.Engine.Formats.Llama2c.Llama2cCheckpoint.Load(SharedFiles.Path_("models", "stories260K", "stories260K.bin")));
        var enc = new FmMeanEncoder(tok, new ArrayEmbeddingTable(model.TokenEmbedding, 64));
        var v = new float[2 * 64];
        enc.Encode(new[] { "Tom had a red kite", "" }, v);
        int[] ids = tok.Encode("Tom had a red kite", false, false);
        for (int k = 0; k < 64; k++)
            Assert.Equal(ids.Average(id => (double)model.TokenEmbedding[id * 64 + k]), v[k], 5);
        Assert.All(v.Skip(64), f => Assert.Equal(0f, f));
    }
}
