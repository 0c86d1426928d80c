using System.Text.Json;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Core.Encoders.Onnx;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Core.Tests.Encoders;

/// <summary>
/// The ONNX encoders against independent references: token ids against Hugging Face's tokenizers (JS port), vectors
/// against a BERT forward pass in PyTorch (float64) on the weights read out of the same model.onnx.
/// </summary>
public class OnnxEncoderTests
{
    internal static readonly Lazy<OnnxSentenceEncoder> MiniLm = new(() =>
        (OnnxSentenceEncoder)EncoderFactory.Create("minilm", new EncoderOptions()));
    private static string MiniLmDir => PackagedEncoders.Directory(PackagedEncoders.MiniLm);

    /// <summary>≥ 200 varied sentences: GLUE SST-2 and MRPC, many scripts, emoji, control characters, code.</summary>
    internal static List<string> Corpus()
    {
        List<string> corpus = EncoderTests.Sentences().Where(s => s.Length < 600).ToList();
        corpus.AddRange(File.ReadLines(SharedFiles.Path_("data", "glue", "SST-2",
            "dev.tsv")).Skip(21).Take(150).Select(l => l.Split('\t')[0]));
        corpus.AddRange(File.ReadLines(SharedFiles.Path_("data", "glue", "MRPC",
            "dev.tsv")).Skip(1).Take(30).Select(l => l.Split('\t')[3]));
        corpus.AddRange(new[] { "Ünbelievable CAFÉ!!", "don't-stop", "x" + new string('y', 150),
            "(parenthesised) [bracketed] {braced}", "tab\tsep", "$5 > 3 + 1 °C" });
        return corpus;
    }

    [Fact]
    public void Token_ids_equal_hugging_face_tokenizers_on_the_real_vocabulary()
    {
        List<string> corpus = Corpus();
        Assert.True(corpus.Count >= 200, $"{corpus.Count} sentences");
        int[][] expected = HuggingFaceIds(MiniLmDir, corpus);
        for (int i = 0; i < corpus.Count; i++)
        {
            int[] ours = MiniLm.Value.Tokenize(corpus[i]);
            int[] theirs = expected[i].Length > 256 ? [.. expected[i][..255], expected[i][^1]] : expected[i];
            Assert.True(theirs.SequenceEqual(ours), $"{JsonSerializer.Serialize(corpus[i])}: HF [{string.Join(",", theirs)}] ours [{string.Join(",", ours)}]");
        }
    }

    [Fact]
    public void MiniLm_equals_a_pytorch_bert_on_the_same_weights()
    {
        List<string> corpus = Corpus().Where(s => !string.IsNullOrWhiteSpace(s)).ToList();
        float[] ours = EncodeOneByOne(MiniLm.Value, corpus);
        double[][] reference = PyTorchReference(MiniLmDir, corpus.Select(MiniLm.Value.Tokenize).ToArray(), "mean");
        double worst = 1;
        for (int i = 0; i < corpus.Count; i++)
        {
            double cosine = Cosine(ours.AsSpan(i * 384, 384), reference[i]);
            worst = Math.Min(worst, cosine);
            Assert.True(cosine >= 0.99999, $"{JsonSerializer.Serialize(corpus[i])}: cosine {cosine}");
        }
        Assert.True(worst > 0.99999, $"worst cosine {worst}");
    }

    [Fact]
    public void Arctic_xs_uses_cls_pooling_and_equals_pytorch()
    {
        var arctic = (OnnxSentenceEncoder)EncoderFactory.Create("arctic-xs", new EncoderOptions());
        List<string> corpus = Corpus().Where(s => !string.IsNullOrWhiteSpace(s)).Take(25).ToList();
        float[] ours = EncodeOneByOne(arctic, corpus);
        double[][] reference = PyTorchReference(PackagedEncoders.Directory(PackagedEncoders.ArcticXs),
            corpus.Select(arctic.Tokenize).ToArray(), "cls");
        for (int i = 0; i < corpus.Count; i++)
        {
            Assert.True(Cosine(ours.AsSpan(i * 384, 384), reference[i]) >= 0.99999,
            corpus[i]);
        }
    }

    [Fact]
    public void A_vector_does_not_depend_on_its_batch_mates_beyond_1e_6()
    {
        List<string> corpus = Corpus().Take(64).ToList();
        float[] alone = EncodeOneByOne(MiniLm.Value, corpus);
        var batched = new float[corpus.Count * 384];
        MiniLm.Value.Encode(corpus, batched);
        var shuffled = corpus.AsEnumerable().Reverse().ToList();
        var reversed = new float[corpus.Count * 384];
        MiniLm.Value.Encode(shuffled, reversed);
        double worst = 0;
        for (int i = 0; i < corpus.Count; i++)
        {
            for (int k = 0; k < 384; k++)
            {
                worst = Math.Max(worst, Math.Abs(alone[i * 384 + k] - batched[i * 384 + k]));
                worst = Math.Max(worst, Math.Abs(alone[i * 384 + k] - reversed[(corpus.Count - 1 - i) * 384 + k]));
            }
        }
        Assert.True(worst <= 1e-6, $"max |batch - alone| = {worst:E2}");
    }

    [Fact]
    public void An_encoder_directory_loads_with_its_config_and_inputs_the_graph_lacks_are_not_fed()
    {
        // The same weights with token_type_ids turned into an internal zero tensor, and CLS pooling configured.
        string dir = TempDir.Create();
        File.Copy(Path.Combine(MiniLmDir, "vocab.txt"), Path.Combine(dir, "vocab.txt"));
        File.Copy(Path.Combine(MiniLmDir, "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"));
        PyTorch.Run("""
            import sys, onnx
            from onnx import helper, TensorProto
            m = onnx.load(sys.argv[1])
            g = m.graph
            kept = [i for i in g.input if i.name != "token_type_ids"]
            del g.input[:]
            g.input.extend(kept)
            g.initializer.append(helper.make_tensor("zero_i64", TensorProto.INT64, [], [0]))
            g.node.insert(0, helper.make_node("Mul", ["input_ids", "zero_i64"], ["token_type_ids"]))
            onnx.save(m, sys.argv[2])
            """, Path.Combine(MiniLmDir, "model.onnx"), Path.Combine(dir, "model.onnx"));
        new OnnxEncoderConfig { Pooling = "cls", Normalize = true, MaxTokens = 128 }.Save(dir);
        var settings = new Dictionary<string, OnnxEncoderSettings>
        {
            ["mine"] = new()
            {
                Directory = dir,
                Threads = 1
            }
        };
        var mine = (OnnxSentenceEncoder)EncoderFactory.Create("mine", new EncoderOptions { Onnx = settings });
        Assert.Equal(384, mine.Dim);
        Assert.Equal(128, mine.MaxTokens);
        string[] texts = { "The movie was great.", "A second, rather longer sentence about the film." };
        float[] ours = EncodeOneByOne(mine, texts.ToList());
        double[][] reference = PyTorchReference(MiniLmDir, texts.Select(mine.Tokenize).ToArray(), "cls");
        for (int i = 0; i < texts.Length; i++) Assert.True(Cosine(ours.AsSpan(i * 384, 384), reference[i]) >= 0.99999);
    }

    [Fact]
    public void Cuda_where_it_cannot_load_fails_naming_what_is_missing_or_falls_back_when_asked()
    {
        string model = Path.Combine(MiniLmDir, "model.onnx");
        var failure = Assert.Throws<DeviceUnavailableException>(() => OnnxSessions.Create(model,
            new OnnxEncoderSettings { Device = "cuda:0" }));
        Assert.Matches(@"lib[a-zA-Z_]+\.so", failure.Message); // the library the loader could not find
        var warnings = new List<string>();
        var (session, device) = OnnxSessions.Create(model, new OnnxEncoderSettings
        {
            Device = "cuda",
            FallbackToCpu = true
        }, warnings.Add);
        using (session)
        {
            Assert.Equal("cpu", device);
            Assert.Contains("running on the CPU", Assert.Single(warnings));
        }
        Assert.Throws<InvalidOperationException>(() => new OnnxEncoderSettings { Device = "gpu" }.CudaDevice);
    }

    internal static float[] EncodeOneByOne(IInstanceEncoder encoder, List<string> texts)
    {
        var output = new float[texts.Count * encoder.Dim];
        for (int i = 0; i < texts.Count; i++) encoder.Encode([texts[i]], output.AsSpan(i * encoder.Dim, encoder.Dim));
        return output;
    }

    private static double Cosine(ReadOnlySpan<float> a, double[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += b[i] * b[i];
        }
        return dot / Math.Sqrt(na * nb);
    }

    /// <summary>Vectors from tests/python/bert_onnx_reference.py for the given token ids.</summary>
    internal static double[][] PyTorchReference(string encoderDir, int[][] ids, string pooling)
    {
        string dir = TempDir.Create(), idsPath = Path.Combine(dir, "ids.json"), outPath = Path.Combine(dir, "out.json");
        File.WriteAllText(idsPath, JsonSerializer.Serialize(ids));
        PyTorch.Run(File.ReadAllText(PythonScript("bert_onnx_reference.py")), Path.Combine(encoderDir, "model.onnx"),
            idsPath, pooling, outPath);
        return JsonSerializer.Deserialize<double[][]>(File.ReadAllText(outPath))!;
    }

    internal static string PythonScript(string name) => RepoFiles.Path_("tests", "python", name);

    /// <summary>Hugging Face's WordPiece pipeline (BertNormalizer, BertPreTokenizer, [CLS]/[SEP]) over a
    /// vocab.txt.</summary>
    internal static int[][] HuggingFaceIds(string encoderDir, List<string> texts)
    {
        string[] vocab = File.ReadAllLines(Path.Combine(encoderDir, "vocab.txt"));
        var ids = vocab.Select((t, i) => (t, i)).GroupBy(x => x.t).ToDictionary(g => g.Key, g => g.First().i);
        var tokenizerJson = new
        {
            version = "1.0", truncation = (object?)null, padding = (object?)null,
            added_tokens = new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" }.Select(t => new
            {
                id = ids[t], content = t, single_word = false, lstrip = false, rstrip = false, normalized = false, special = true,
            }),
            normalizer = new
            {
                type = "BertNormalizer", clean_text = true, handle_chinese_chars = true,
                strip_accents = (bool?)null, lowercase = true
            },
            pre_tokenizer = new { type = "BertPreTokenizer" },
            post_processor = new
            {
                type = "TemplateProcessing",
                single = new object[]
                {
                    new { SpecialToken = new { id = "[CLS]", type_id = 0 } }, new { Sequence = new { id = "A",
                        type_id = 0 } },
                    new { SpecialToken = new { id = "[SEP]", type_id = 0 } },
                },
                pair = Array.Empty<object>(),
                special_tokens = new Dictionary<string, object>
                {
                    ["[CLS]"] = new { id = "[CLS]", ids = new[] { ids["[CLS]"] }, tokens = new[] { "[CLS]" } },
                    ["[SEP]"] = new { id = "[SEP]", ids = new[] { ids["[SEP]"] }, tokens = new[] { "[SEP]" } },
                },
            },
            decoder = new { type = "WordPiece", prefix = "##", cleanup = true },
            model = new
            {
                type = "WordPiece", unk_token = "[UNK]", continuing_subword_prefix = "##",
                max_input_chars_per_word = 100, vocab = ids
            },
        };
        string dir = TempDir.Create();
        string tj = Path.Combine(dir, "tokenizer.json"), tc = Path.Combine(dir,
            "tokenizer_config.json"), input = Path.Combine(dir, "texts.json");
        File.WriteAllText(tj, JsonSerializer.Serialize(tokenizerJson));
        File.WriteAllText(tc, """{"tokenizer_class": "BertTokenizer", "do_lower_case": true, "model_max_length": 512}""");
        File.WriteAllText(input, JsonSerializer.Serialize(texts));
        return JsonSerializer.Deserialize<int[][]>(Node.Run("bert-tokenize.mjs", tj, tc, input))!;
    }
}
