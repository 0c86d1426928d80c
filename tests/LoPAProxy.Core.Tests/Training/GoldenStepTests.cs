using System.Globalization;
using System.Text.Json;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Core.Training;
using LoPAProxy.Engine.Formats.SafeTensors;
using LoPAProxy.Engine.Kernels;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Core.Tests.Training;

/// <summary>
/// One training step of each method on a tiny random Llama (GQA, 2 layers, the real 512-token vocabulary) against a
/// PyTorch reference written here in float64: the loss and every trainable parameter's gradient within 1e-4.
/// </summary>
public class GoldenStepTests
{
    private const string Reference = """
        import sys, json, struct, torch
        torch.set_default_dtype(torch.float64)
        raw = open(sys.argv[1], 'rb').read()
        n = struct.unpack('<Q', raw[:8])[0]; header = json.loads(raw[8:8 + n]); data = raw[8 + n:]
        T = {}
        for k, v in header.items():
            if k == '__metadata__': continue
            b, e = v['data_offsets']
            T[k] = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32).to(torch.float64).reshape(v['shape'])
        meta = json.load(open(sys.argv[2]))
        c = meta['cfg']; method = meta['method']
        D, HID, NL, HQ, HKV, HD, V = c['dim'], c['hidden'], c['layers'], c['heads'], c['kv_heads'], c['head_dim'], c['vocab']
        m, r, H, h = c['m'], c['r'], c['head_hidden'], c['h']
        params = [T['param.%d' % i].clone().requires_grad_() for i in range(meta['n_params'])]
        batch = meta['batch']; B = len(batch)

        def head(x, i, out):
            dw, db, ow, ob = params[i:i + 4]
            return torch.tanh(x @ dw.view(H, h).T + db) @ ow.view(out, H).T + ob

        if method == 'lora': Z = None; m = 0
        elif method == 'prompt_tuning': Z = params[0].view(m, D).expand(B, m, D)
        else:
            x = T['x'].view(B, h)
            if method == 'idpg': Z = head(x, 0, m * D).view(B, m, D)
            else:
                zs = params[0].view(m, D)
                u = head(x, 1, m * r).view(B, m, r); v = head(x, 5, D * r).view(B, D, r)
                zi = u @ v.transpose(1, 2)
                Z = zs * torch.sigmoid(zi) if method == 'lopa' else zs + zi

        emb = T['fm.emb']
        lengths = [m + len(s['ids']) for s in batch]; L = max(lengths)
        rows = []
        for bi, s in enumerate(batch):
            parts = ([Z[bi]] if Z is not None else []) + [emb[torch.tensor(s['ids'])], torch.zeros(L - lengths[bi], D)]
            rows.append(torch.cat(parts, 0))
        X = torch.stack(rows)
        i_ = torch.arange(L)
        allowed = torch.stack([(i_[None, :] <= i_[:, None]) & (i_[None, :] < n) for n in lengths])   # [B, L, L]

        def rms(t, w): return t * torch.rsqrt((t * t).mean(-1, keepdim=True) + c['eps']) * w
        pair = torch.arange(HD // 2)
        freq = 1.0 / (c['theta'] ** (2 * pair / HD))
        ang = i_[:, None] * freq[None, :]; cos, sin = torch.cos(ang), torch.sin(ang)      # [L, HD/2]
        def rope(t):                                  # t [B, L, heads, HD], llama2.c's interleaved pairs
            a, b = t[..., 0::2], t[..., 1::2]
            cc, ss = cos[None, :, None, :], sin[None, :, None, :]
            return torch.stack([a * cc - b * ss, a * ss + b * cc], -1).flatten(-2)

        lora_i = 0
        def proj(t, w, l, name):
            global lora_i
            y = t @ w.T
            if method == 'lora' and name in ('q', 'v'):
                A, Bm = params[lora_i], params[lora_i + 1]; lora_i += 2
                y = y + c['lora_scale'] * ((t @ A.view(r, -1).T) @ Bm.view(-1, r).T)
            return y

        hs = X
        for l in range(NL):
            p = 'fm.l%d.' % l
            nx = rms(hs, T[p + 'attn_norm'])
            q = rope(proj(nx, T[p + 'wq'], l, 'q').view(B, L, HQ, HD))
            k = rope(proj(nx, T[p + 'wk'], l, 'k').view(B, L, HKV, HD))
            vv = proj(nx, T[p + 'wv'], l, 'v').view(B, L, HKV, HD)
            k = k.repeat_interleave(HQ // HKV, dim=2); vv = vv.repeat_interleave(HQ // HKV, dim=2)
            sc = torch.einsum('bihd,bjhd->bhij', q, k) / HD ** 0.5
            sc = sc.masked_fill(~allowed[:, None], float('-inf'))
            o = torch.einsum('bhij,bjhd->bihd', torch.softmax(sc, -1), vv).reshape(B, L, HQ * HD)
            hs = hs + o @ T[p + 'wo'].T
            f = rms(hs, T[p + 'ffn_norm'])
            hs = hs + (torch.nn.functional.silu(f @ T[p + 'w1'].T) * (f @ T[p + 'w3'].T)) @ T[p + 'w2'].T
        logits = rms(hs, T['fm.final_norm']) @ T['fm.cls'].T
        sel, tgt = [], []
        for bi, s in enumerate(batch):
            for j in range(s['prompt_len'], len(s['ids'])):
                sel.append(logits[bi, m + j - 1]); tgt.append(s['ids'][j])
        loss = torch.nn.functional.cross_entropy(torch.stack(sel), torch.tensor(tgt))
        loss.backward()
        print(json.dumps({'loss': loss.item(), 'grads': [p.grad.flatten().tolist() if p.grad is not None else None for p in params]}))
        """;

    [Theory]
    [InlineData("prompt_tuning")]
    [InlineData("idpg")]
    [InlineData("lopa_add")]
    [InlineData("lopa")]
    [InlineData("lora")]
    public void One_step_matches_PyTorch(string methodName)
    {
        string tokDir = SharedFiles.Path_("models", "stories260K");
        var tokenizer = SentencePieceBpeTokenizer.Load(Path.Combine(tokDir, "tok512.bin"), 512);
        var rng = new Random(11);
        var c = new LlamaConfig(Dim: 16, HiddenDim: 24, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 4, VocabSize: 512, MaxSeqLen: 64, 10000f, 1e-5f, RotaryLayout.Interleaved);
        float[] R(int n, float s = 0.3f) => Rand.Floats(rng, n, s);
        float[] Norm(int n) => R(n, 0.2f).Select(x => x + 1f).ToArray();
        var layers = Enumerable.Range(0, c.Layers).Select(_ => new LlamaLayer(Norm(c.Dim), R(c.QDim * c.Dim), R(c.KvDim * c.Dim), R(c.KvDim * c.Dim),
            R(c.Dim * c.QDim), Norm(c.Dim), R(c.HiddenDim * c.Dim), R(c.Dim * c.HiddenDim), R(c.HiddenDim * c.Dim))).ToList();
        var fm = new LlamaModel(c, R(c.VocabSize * c.Dim, 1f), layers, Norm(c.Dim), R(c.VocabSize * c.Dim));
        var encoder = new FmMeanEncoder(tokenizer, fm.TokenEmbedding, c.Dim);
        var options = new TrainingOptions { Method = TrainingMethods.Parse(methodName), VirtualTokens = 3, Rank = 2, HiddenSize = 5 };
        var trainer = new LopaTrainer(fm, tokenizer, encoder, options);
        // Every parameter random and non-zero (biases and LoRA's B start at zero, which would hide their paths).
        foreach (float[] p in trainer.Parameters) R(p.Length, 0.5f).CopyTo(p, 0);

        TaskExample[] batch =
        {
            new("a gorgeous , witty , seductive movie .", "a gorgeous , witty , seductive movie . Sentiment:", " positive"),
            new("it 's a mess", "it 's a mess Sentiment:", " negative"),
            new("the story is told with gusto and a lot of heart", "the story is told with gusto and a lot of heart Sentiment:", " positive"),
        };
        double loss = trainer.ComputeGradients(batch);
        float[]?[] grads = trainer.Gradients();

        string dir = TempDir.Create();
        var w = new SafeTensorsWriter();
        void Add(string name, float[] v, params int[] shape) => w.Add(name, Tensor.FromArray(v, shape));
        Add("fm.emb", fm.TokenEmbedding, c.VocabSize, c.Dim);
        Add("fm.cls", fm.Classifier, c.VocabSize, c.Dim);
        Add("fm.final_norm", fm.FinalNorm, c.Dim);
        for (int l = 0; l < c.Layers; l++)
        {
            LlamaLayer L = fm.Layers[l];
            Add($"fm.l{l}.attn_norm", L.AttentionNorm, c.Dim); Add($"fm.l{l}.ffn_norm", L.FfnNorm, c.Dim);
            Add($"fm.l{l}.wq", L.Wq, c.QDim, c.Dim); Add($"fm.l{l}.wk", L.Wk, c.KvDim, c.Dim); Add($"fm.l{l}.wv", L.Wv, c.KvDim, c.Dim);
            Add($"fm.l{l}.wo", L.Wo, c.Dim, c.QDim); Add($"fm.l{l}.w1", L.W1, c.HiddenDim, c.Dim); Add($"fm.l{l}.w2", L.W2, c.Dim, c.HiddenDim);
            Add($"fm.l{l}.w3", L.W3, c.HiddenDim, c.Dim);
        }
        for (int i = 0; i < trainer.Parameters.Count; i++) Add($"param.{i}", trainer.Parameters[i], trainer.Parameters[i].Length);
        var x = new float[batch.Length * c.Dim];
        encoder.Encode(batch.Select(e => e.Instance).ToList(), x);
        Add("x", x, batch.Length, c.Dim);
        w.Save(Path.Combine(dir, "weights.safetensors"));
        int m = options.Method == TrainingMethod.Lora ? 0 : options.VirtualTokens;
        var meta = new
        {
            method = methodName, n_params = trainer.Parameters.Count,
            cfg = new { dim = c.Dim, hidden = c.HiddenDim, layers = c.Layers, heads = c.Heads, kv_heads = c.KvHeads, head_dim = c.HeadDim, vocab = c.VocabSize,
                eps = c.NormEps, theta = c.RopeTheta, m = options.VirtualTokens, r = options.Rank, head_hidden = options.HiddenSize, h = c.Dim, lora_scale = options.LoraAlpha / options.Rank },
            batch = batch.Select(e => TokenizedExample.Create(tokenizer, e.Prompt, e.Target, c.MaxSeqLen - m)).Select(t => new { ids = t.Ids, prompt_len = t.PromptLength }),
        };
        File.WriteAllText(Path.Combine(dir, "meta.json"), JsonSerializer.Serialize(meta));

        using var reference = JsonDocument.Parse(PyTorch.Run(Reference, Path.Combine(dir, "weights.safetensors"), Path.Combine(dir, "meta.json")));
        Assert.Equal(reference.RootElement.GetProperty("loss").GetDouble(), loss, 4);
        var expected = reference.RootElement.GetProperty("grads").EnumerateArray().ToList();
        Assert.Equal(expected.Count, grads.Length);
        for (int i = 0; i < grads.Length; i++)
        {
            float[] want = expected[i].ValueKind == JsonValueKind.Null ? new float[trainer.Parameters[i].Length]
                : expected[i].EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
            float[] got = grads[i] ?? new float[want.Length];
            Assert.True(want.Any(v => v != 0), $"parameter {i}: the reference gradient is all zero — the test would prove nothing");
            Rand.AssertClose(want, got, 1e-4f, $"{methodName} parameter {i}");
        }
    }
}
