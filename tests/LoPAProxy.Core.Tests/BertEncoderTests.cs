using System.Globalization;
using System.Text.Json;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Core.Tests;

public class BertEncoderTests
{
    /// <summary>A vocabulary built from real text: specials, characters, frequent words and ## suffixes.</summary>
    internal static List<string> Vocabulary()
    {
        var words = File.ReadLines(SharedFiles.Path_("data", "glue", "SST-2", "train.tsv")).Skip(1).Take(4000)
            .SelectMany(l => l.Split('\t')[0].ToLowerInvariant().Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .GroupBy(w => w).OrderByDescending(g => g.Count()).Select(g => g.Key).Where(w => w.All(char.IsAsciiLetter)).Take(600).ToList();
        var vocab = new List<string> { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
        vocab.AddRange("abcdefghijklmnopqrstuvwxyz0123456789.,!?'\"-()".Select(c => c.ToString()));
        vocab.AddRange("abcdefghijklmnopqrstuvwxyz".Select(c => "##" + c));
        vocab.AddRange(new[] { "##ing", "##ed", "##ly", "##er", "##est", "##ness", "##tion", "日", "本", "é" });
        vocab.AddRange(words.Where(w => !vocab.Contains(w)));
        return vocab.Distinct().ToList();
    }

    internal static string Build(string dir, int seed)
    {
        List<string> vocab = Vocabulary();
        File.WriteAllLines(Path.Combine(dir, "vocab.txt"), vocab);
        PyTorch.Run("""
            import sys, json, struct, torch
            d, seed, V = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
            torch.manual_seed(seed)
            H, L, heads, I, P = 64, 2, 4, 128, 40
            json.dump({'model_type': 'bert', 'hidden_size': H, 'num_hidden_layers': L, 'num_attention_heads': heads, 'intermediate_size': I,
                       'vocab_size': V, 'max_position_embeddings': P, 'type_vocab_size': 2, 'layer_norm_eps': 1e-12, 'hidden_act': 'gelu'}, open(d + '/config.json', 'w'))
            W = {'embeddings.word_embeddings.weight': torch.randn(V, H) * 0.5, 'embeddings.position_embeddings.weight': torch.randn(P, H) * 0.1,
                 'embeddings.token_type_embeddings.weight': torch.randn(2, H) * 0.1, 'embeddings.LayerNorm.weight': 1 + 0.1 * torch.randn(H), 'embeddings.LayerNorm.bias': 0.1 * torch.randn(H)}
            for l in range(L):
                p = f'encoder.layer.{l}.'
                for n, o, i in [('attention.self.query', H, H), ('attention.self.key', H, H), ('attention.self.value', H, H), ('attention.output.dense', H, H),
                                ('intermediate.dense', I, H), ('output.dense', H, I)]:
                    W[p + n + '.weight'] = torch.randn(o, i) * 0.15; W[p + n + '.bias'] = torch.randn(o) * 0.05
                for n in ['attention.output.LayerNorm', 'output.LayerNorm']:
                    W[p + n + '.weight'] = 1 + 0.1 * torch.randn(H); W[p + n + '.bias'] = 0.1 * torch.randn(H)
            W['pooler.dense.weight'] = torch.randn(H, H); W['pooler.dense.bias'] = torch.randn(H)
            header, blobs, off = {}, [], 0
            for k, t in W.items():
                b = t.contiguous().numpy().astype('<f4').tobytes(); header['bert.' + k] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}; blobs.append(b); off += len(b)
            h = json.dumps(header).encode(); h += b' ' * ((8 - len(h) % 8) % 8)
            open(d + '/model.safetensors', 'wb').write(struct.pack('<Q', len(h)) + h + b''.join(blobs))
            """, dir, seed.ToString(), vocab.Count.ToString());
        return dir;
    }

    /// <summary>BERT forward in PyTorch (post-LN, erf GELU), mean and CLS pooling, for given ids.</summary>
    private const string Forward = """
        import sys, json, struct, torch
        d = sys.argv[1]; cfg = json.load(open(d + '/config.json'))
        raw = open(d + '/model.safetensors', 'rb').read(); n = struct.unpack('<Q', raw[:8])[0]; hd = json.loads(raw[8:8 + n]); data = raw[8 + n:]
        W = {k[5:]: torch.frombuffer(bytearray(data[v['data_offsets'][0]:v['data_offsets'][1]]), dtype=torch.float32).reshape(v['shape']).double() for k, v in hd.items()}
        F = torch.nn.functional
        for ids_text in sys.argv[2:]:
            ids = torch.tensor([int(t) for t in ids_text.split(',')]); T = len(ids); H = cfg['hidden_size']; nh = cfg['num_attention_heads']
            ln = lambda x, p: F.layer_norm(x, (H,), W[p + '.weight'], W[p + '.bias'], cfg['layer_norm_eps'])
            lin = lambda x, p: F.linear(x, W[p + '.weight'], W[p + '.bias'])
            x = ln(W['embeddings.word_embeddings.weight'][ids] + W['embeddings.position_embeddings.weight'][:T] + W['embeddings.token_type_embeddings.weight'][0], 'embeddings.LayerNorm')
            for l in range(cfg['num_hidden_layers']):
                p = f'encoder.layer.{l}.'
                heads = lambda t: t.view(T, nh, H // nh).transpose(0, 1)
                q, k, v = heads(lin(x, p + 'attention.self.query')), heads(lin(x, p + 'attention.self.key')), heads(lin(x, p + 'attention.self.value'))
                a = ((q @ k.transpose(1, 2)) / (H // nh) ** 0.5).softmax(-1) @ v
                x = ln(lin(a.transpose(0, 1).reshape(T, H), p + 'attention.output.dense') + x, p + 'attention.output.LayerNorm')
                x = ln(lin(F.gelu(lin(x, p + 'intermediate.dense')), p + 'output.dense') + x, p + 'output.LayerNorm')
            print(' '.join(repr(float(t)) for t in x.mean(0)), '|', ' '.join(repr(float(t)) for t in x[0]))
        """;

    [Fact]
    public void Bert_forward_matches_pytorch_for_mean_and_cls_pooling()
    {
        string dir = Build(TempDir.Create(), 3);
        BertEncoder mean = BertEncoder.Load(dir), cls = BertEncoder.Load(dir, BertPooling.Cls, normalize: true);
        string[] texts = { "a great movie", "the worst film ever made , really", "", "unbelievably boring and predictable!" };
        string[] idLists = texts.Select(t => string.Join(",", mean.Tokenize(t))).ToArray();
        string[] lines = PyTorch.Run(Forward, new[] { dir }.Concat(idLists).ToArray()).Trim().Split('\n');
        var m = new float[texts.Length * 64];
        var c = new float[texts.Length * 64];
        mean.Encode(texts, m);
        cls.Encode(texts, c);
        for (int i = 0; i < texts.Length; i++)
        {
            string[] parts = lines[i].Split(" | ");
            float[] expectedMean = parts[0].Split(' ').Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            float[] expectedCls = parts[1].Split(' ').Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            double norm = Math.Sqrt(expectedCls.Sum(v => (double)v * v));
            Rand.AssertClose(expectedMean, m.AsSpan(i * 64, 64), 1e-4f, $"mean '{texts[i]}'");
            Rand.AssertClose(expectedCls.Select(v => (float)(v / norm)).ToArray(), c.AsSpan(i * 64, 64), 1e-4f, $"cls '{texts[i]}'");
        }
    }

    [Fact]
    public void WordPiece_matches_huggingface_tokenizers()
    {
        string dir = TempDir.Create();
        List<string> vocab = Vocabulary();
        var tokenizerJson = new
        {
            version = "1.0", truncation = (object?)null, padding = (object?)null,
            added_tokens = new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" }.Select((t, i) => new { id = i, content = t, single_word = false, lstrip = false, rstrip = false, normalized = false, special = true }),
            normalizer = new { type = "BertNormalizer", clean_text = true, handle_chinese_chars = true, strip_accents = (bool?)null, lowercase = true },
            pre_tokenizer = new { type = "BertPreTokenizer" },
            post_processor = new
            {
                type = "TemplateProcessing",
                single = new object[] { new { SpecialToken = new { id = "[CLS]", type_id = 0 } }, new { Sequence = new { id = "A", type_id = 0 } }, new { SpecialToken = new { id = "[SEP]", type_id = 0 } } },
                pair = Array.Empty<object>(),
                special_tokens = new Dictionary<string, object> { ["[CLS]"] = new { id = "[CLS]", ids = new[] { 2 }, tokens = new[] { "[CLS]" } }, ["[SEP]"] = new { id = "[SEP]", ids = new[] { 3 }, tokens = new[] { "[SEP]" } } },
            },
            decoder = new { type = "WordPiece", prefix = "##", cleanup = true },
            model = new { type = "WordPiece", unk_token = "[UNK]", continuing_subword_prefix = "##", max_input_chars_per_word = 100, vocab = vocab.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i) },
        };
        string tj = Path.Combine(dir, "tokenizer.json"), tc = Path.Combine(dir, "tokenizer_config.json"), texts = Path.Combine(dir, "texts.json");
        File.WriteAllText(tj, JsonSerializer.Serialize(tokenizerJson));
        File.WriteAllText(tc, """{"tokenizer_class": "BertTokenizer", "do_lower_case": true, "model_max_length": 512}""");
        var corpus = EncoderTests.Sentences().Where(s => s.Length < 2000).ToList();
        corpus.AddRange(File.ReadLines(SharedFiles.Path_("data", "glue", "SST-2", "dev.tsv")).Skip(1).Take(300).Select(l => l.Split('\t')[0]));
        corpus.AddRange(new[] { "Ünbelievable CAFÉ!!", "don't-stop", "x" + new string('y', 150), "日本語 text", "(parenthesised) [bracketed] {braced}", "tab\tsep" });
        File.WriteAllText(texts, JsonSerializer.Serialize(corpus));
        int[][] expected = JsonSerializer.Deserialize<int[][]>(Node.Run("bert-tokenize.mjs", tj, tc, texts))!;
        foreach (string source in new[] { tj, Path.Combine(dir, "vocab.txt") })
        {
            if (source.EndsWith("vocab.txt")) File.WriteAllLines(source, vocab);
            var ours = WordPieceTokenizer.Load(source);
            for (int i = 0; i < corpus.Count; i++)
                Assert.True(expected[i].SequenceEqual(ours.Encode(corpus[i], 100000)),
                    $"{Path.GetFileName(source)}: {JsonSerializer.Serialize(corpus[i])}: expected [{string.Join(",", expected[i])}] got [{string.Join(",", ours.Encode(corpus[i], 100000))}]");
        }
    }

    [Fact]
    public void Long_instances_are_cut_to_the_model_limit()
    {
        BertEncoder enc = BertEncoder.Load(Build(TempDir.Create(), 4));
        int[] ids = enc.Tokenize(string.Join(" ", Enumerable.Repeat("great movie", 100)));
        Assert.Equal(40, ids.Length);
        Assert.Equal(3, ids[^1]); // [SEP] kept
        var v = new float[64];
        enc.Encode(new[] { string.Join(" ", Enumerable.Repeat("great movie", 100)) }, v);
        Assert.All(v, f => Assert.True(float.IsFinite(f)));
    }
}
