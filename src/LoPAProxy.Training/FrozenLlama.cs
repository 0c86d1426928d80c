using LoPAProxy.Engine.Networks.Llama;
using static TorchSharp.torch;

namespace LoPAProxy.Training;

/// <summary>
/// The foundation model for training, frozen, as libtorch tensors (no gradients, no optimiser state): RMSNorm, RoPE
/// (llama2.c's interleaved pairs or Hugging Face's halves), grouped-query attention, SwiGLU — the maths of
/// <see cref="LlamaModel"/>, over a whole right-padded batch. Gradients flow to the input rows (soft prompts) and to
/// LoRA updates only.
/// </summary>
public sealed class FrozenLlama : IDisposable
{
    private sealed record Layer(Tensor AttentionNorm, Tensor Wq, Tensor Wk, Tensor Wv, Tensor Wo, Tensor FfnNorm,
        Tensor W1, Tensor W2, Tensor W3);

    private readonly Layer[] _layers;
    private readonly Tensor _finalNorm, _classifier, _cos, _sin;   // cos, sin: [maxSeq, headDim / 2]

    public LlamaConfig Config { get; }
    public Device Device { get; }
    /// <summary>[vocab, dim]</summary>
    public Tensor Embedding { get; }

    public FrozenLlama(LlamaModel model, Device device)
    {
        Config = model.Config;
        Device = device;
        LlamaConfig c = Config;
        Tensor T(float[] values, params long[] shape) => tensor(values, shape, ScalarType.Float32, device);
        Embedding = T(model.TokenEmbedding, c.VocabSize, c.Dim);
        _classifier = ReferenceEquals(model.Classifier, model.TokenEmbedding) ? Embedding
            : T(model.Classifier, c.VocabSize, c.Dim);
        _finalNorm = T(model.FinalNorm, c.Dim);
        _layers = model.Layers.Select(l => new Layer(T(l.AttentionNorm, c.Dim), T(l.Wq, c.QDim, c.Dim),
            T(l.Wk, c.KvDim, c.Dim), T(l.Wv, c.KvDim, c.Dim), T(l.Wo, c.Dim, c.QDim), T(l.FfnNorm, c.Dim),
            T(l.W1, c.HiddenDim, c.Dim), T(l.W2, c.Dim, c.HiddenDim), T(l.W3, c.HiddenDim, c.Dim))).ToArray();
        Tensor frequencies = 1.0 / pow(c.RopeTheta, arange(0, c.HeadDim, 2, ScalarType.Float64) / c.HeadDim);
        Tensor angles = outer(arange(c.MaxSeqLen, ScalarType.Float64), frequencies);
        _cos = angles.cos().to(ScalarType.Float32).to(device);
        _sin = angles.sin().to(ScalarType.Float32).to(device);
    }

    /// <summary>
    /// x [batch, tokens, dim] → the final-normed hidden states, same shape. Sequence b's positions ≥ lengths[b] are
    /// padding, hidden from every query.
    /// </summary>
    public Tensor Hidden(Tensor x, Tensor lengths, LoraUpdates? lora = null)
    {
        LlamaConfig c = Config;
        long batch = x.shape[0], tokens = x.shape[1];
        if (tokens > c.MaxSeqLen)
            throw new ArgumentException($"sequence of {tokens} positions exceeds the context of {c.MaxSeqLen}");
        Tensor positions = arange(tokens, device: Device);
        Tensor causal = positions.unsqueeze(0) <= positions.unsqueeze(1);                     // [L, L]: j ≤ i
        Tensor real = positions.unsqueeze(0) < lengths.unsqueeze(1);                          // [B, L]: j < length
        Tensor allowed = (causal.unsqueeze(0) & real.unsqueeze(1)).unsqueeze(1);              // [B, 1, L, L]
        Tensor cos = _cos.narrow(0, 0, tokens).unsqueeze(1);                                   // [L, 1, hd/2]
        Tensor sin = _sin.narrow(0, 0, tokens).unsqueeze(1);
        int groups = c.Heads / c.KvHeads;
        Tensor h = x;
        for (int l = 0; l < _layers.Length; l++)
        {
            Layer w = _layers[l];
            Tensor n = RmsNorm(h, w.AttentionNorm);
            Tensor q = Rope(Project(n, w.Wq, lora, l, "q").view(batch, tokens, c.Heads, c.HeadDim), cos, sin);
            Tensor k = Rope(Project(n, w.Wk, lora, l, "k").view(batch, tokens, c.KvHeads, c.HeadDim), cos, sin);
            Tensor v = Project(n, w.Wv, lora, l, "v").view(batch, tokens, c.KvHeads, c.HeadDim);
            q = q.transpose(1, 2);                                                             // [B, H, L, hd]
            k = k.transpose(1, 2);
            v = v.transpose(1, 2);
            if (groups > 1)
            {
                k = k.repeat_interleave(groups, dim: 1);
                v = v.repeat_interleave(groups, dim: 1);
            }
            Tensor att = nn.functional.scaled_dot_product_attention(q, k, v, allowed);
            att = att.transpose(1, 2).reshape(batch, tokens, c.QDim);
            h = h + Project(att, w.Wo, lora, l, "o");
            Tensor f = RmsNorm(h, w.FfnNorm);
            Tensor gate = nn.functional.silu(nn.functional.linear(f, w.W1));
            h = h + nn.functional.linear(gate * nn.functional.linear(f, w.W3), w.W2);
        }
        return RmsNorm(h, _finalNorm);
    }

    /// <summary>Logits [n, vocab] of hidden rows [n, dim].</summary>
    public Tensor Logits(Tensor rows) => nn.functional.linear(rows, _classifier);

    private static Tensor Project(Tensor input, Tensor weight, LoraUpdates? lora, int layer, string name)
    {
        Tensor y = nn.functional.linear(input, weight);
        return lora?.Find(layer, name) is { } update ? y + update.Delta(input) : y;
    }

    private Tensor RmsNorm(Tensor x, Tensor weight) =>
        x * rsqrt(x.pow(2).mean(new long[] { -1 }, keepdim: true) + Config.NormEps) * weight;

    /// <summary>t [B, L, heads, hd] rotated by position: pairs (2i, 2i+1) (llama2.c) or (i, i + hd/2) (HF).</summary>
    private Tensor Rope(Tensor t, Tensor cos, Tensor sin)
    {
        long half = Config.HeadDim / 2;
        if (Config.Rotary == RotaryLayout.Interleaved)
        {
            Tensor pairs = t.unflatten(3, new long[] { half, 2 });
            Tensor a = pairs.select(-1, 0), b = pairs.select(-1, 1);
            return stack(new[] { a * cos - b * sin, a * sin + b * cos }, -1).flatten(3);
        }
        Tensor x1 = t.narrow(-1, 0, half), x2 = t.narrow(-1, half, half);
        return cat(new[] { x1 * cos - x2 * sin, x2 * cos + x1 * sin }, -1);
    }

    public void Dispose()
    {
        foreach (Layer l in _layers)
        {
            foreach (Tensor t in new[] { l.AttentionNorm, l.Wq, l.Wk, l.Wv, l.Wo, l.FfnNorm, l.W1, l.W2, l.W3 })
                t.Dispose();
        }

        foreach (Tensor t in new[] { Embedding, _classifier, _finalNorm, _cos, _sin }) t.Dispose();
    }
}
