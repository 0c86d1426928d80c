using System.Globalization;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.Engine.Tests.Support;
using static TorchSharp.torch;

namespace LoPAProxy.Training.Tests;

/// <summary>The trainer's frozen FM (TorchSharp) loaded from the Hugging Face Llama layout, against an independent
/// PyTorch implementation of LlamaForCausalLM's maths (half-split RoPE, GQA, tied or separate classifier).</summary>
public class FrozenLlamaTests
{
    public const string Reference = """
        import sys, json, struct, torch
        torch.manual_seed(int(sys.argv[2]))
        d, L, H, KV, hid, theta, tied = 48, 2, 6, 2, 96, float(sys.argv[3]), sys.argv[4] == '1'
        V = int(sys.argv[6]) if len(sys.argv) > 6 else 80
        hd = d // H
        W = {'model.embed_tokens.weight': torch.randn(V, d) * 0.5, 'model.norm.weight': 1 + 0.1 * torch.randn(d)}
        for l in range(L):
            p = f'model.layers.{l}.'
            W[p + 'input_layernorm.weight'] = 1 + 0.1 * torch.randn(d)
            W[p + 'post_attention_layernorm.weight'] = 1 + 0.1 * torch.randn(d)
            for n, shape in [('self_attn.q_proj', (H * hd, d)), ('self_attn.k_proj', (KV * hd, d)), ('self_attn.v_proj', (KV * hd, d)),
                             ('self_attn.o_proj', (d, H * hd)), ('mlp.gate_proj', (hid, d)), ('mlp.up_proj', (hid, d)), ('mlp.down_proj', (d, hid))]:
                W[p + n + '.weight'] = torch.randn(*shape) * 0.15
        if not tied: W['lm_head.weight'] = torch.randn(V, d) * 0.3
        out = sys.argv[1]
        json.dump({'model_type': 'llama', 'hidden_size': d, 'num_hidden_layers': L, 'num_attention_heads': H, 'num_key_value_heads': KV,
                   'intermediate_size': hid, 'vocab_size': V, 'max_position_embeddings': 64, 'rms_norm_eps': 1e-6, 'rope_theta': theta,
                   'tie_word_embeddings': tied, 'hidden_act': 'silu'}, open(out + '/config.json', 'w'))
        # safetensors by hand (the spec: u64 header length, JSON header, raw little-endian data)
        header, blobs, off = {}, [], 0
        for k, t in W.items():
            b = t.contiguous().numpy().astype('<f4').tobytes(); header[k] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}; blobs.append(b); off += len(b)
        h = json.dumps(header).encode(); h += b' ' * ((8 - len(h) % 8) % 8)
        open(out + '/model.safetensors', 'wb').write(struct.pack('<Q', len(h)) + h + b''.join(blobs))

        def rms(x, w): return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w
        def rot(x): return torch.cat((-x[..., x.shape[-1] // 2:], x[..., :x.shape[-1] // 2]), -1)
        ids = torch.tensor([int(t) for t in sys.argv[5].split(',')]); T = len(ids)
        inv = 1.0 / (theta ** (torch.arange(0, hd, 2).float() / hd)); ang = torch.outer(torch.arange(T).float(), inv)
        cos, sin = torch.cat((ang, ang), -1).cos(), torch.cat((ang, ang), -1).sin()
        x = W['model.embed_tokens.weight'][ids]
        for l in range(L):
            p = f'model.layers.{l}.'
            h_ = rms(x, W[p + 'input_layernorm.weight'])
            q = (h_ @ W[p + 'self_attn.q_proj.weight'].T).view(T, H, hd).transpose(0, 1)
            k = (h_ @ W[p + 'self_attn.k_proj.weight'].T).view(T, KV, hd).transpose(0, 1)
            v = (h_ @ W[p + 'self_attn.v_proj.weight'].T).view(T, KV, hd).transpose(0, 1)
            q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
            k, v = k.repeat_interleave(H // KV, 0), v.repeat_interleave(H // KV, 0)
            s = (q @ k.transpose(1, 2)) / hd ** 0.5 + torch.triu(torch.full((T, T), float('-inf')), 1)
            a = (s.softmax(-1) @ v).transpose(0, 1).reshape(T, H * hd)
            x = x + a @ W[p + 'self_attn.o_proj.weight'].T
            h_ = rms(x, W[p + 'post_attention_layernorm.weight'])
            x = x + (torch.nn.functional.silu(h_ @ W[p + 'mlp.gate_proj.weight'].T) * (h_ @ W[p + 'mlp.up_proj.weight'].T)) @ W[p + 'mlp.down_proj.weight'].T
        logits = rms(x, W['model.norm.weight']) @ (W['model.embed_tokens.weight'] if tied else W['lm_head.weight']).T
        for row in logits: print(' '.join(repr(float(v)) for v in row))
        """;

    [Theory]
    [InlineData(1, 10000.0, true)]
    [InlineData(2, 500000.0, false)]
    public void Logits_match_pytorch_at_every_position(int seed, double theta, bool tied)
    {
        string dir = TempDir.Create();
        int[] ids = { 3, 17, 42, 5, 79, 0, 11, 64, 2, 33 };
        string[] lines = PyTorch.Run(Reference, dir, seed.ToString(CultureInfo.InvariantCulture),
            theta.ToString(CultureInfo.InvariantCulture),
            tied ? "1" : "0", string.Join(",", ids)).Trim().Split('\n');
        var model = LlamaModel.FromHuggingFace(dir);
        Assert.Equal(tied, ReferenceEquals(model.Classifier, model.TokenEmbedding));
        using var fm = new FrozenLlama(model, CPU);
        int d = model.Config.Dim;
        float[] rows = ids.SelectMany(t => model.TokenEmbedding.AsSpan(t * d, d).ToArray()).ToArray();
        using Tensor x = tensor(rows, new long[] { 1, ids.Length, d });
        using Tensor lengths = tensor(new long[] { ids.Length });
        using Tensor logits = fm.Logits(fm.Hidden(x, lengths).squeeze(0));
        float[] actual = logits.data<float>().ToArray();
        int vocab = model.Config.VocabSize;
        for (int t = 0; t < ids.Length; t++)
        {
            float[] expected = lines[t].Split(' ').Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            Rand.AssertClose(expected, actual.AsSpan(t * vocab, vocab).ToArray(), 1e-4f, $"position {t}");
        }
    }
}
