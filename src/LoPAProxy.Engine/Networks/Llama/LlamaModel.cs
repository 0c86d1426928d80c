using System.Numerics.Tensors;
using LoPAProxy.Engine.Blas;
using LoPAProxy.Engine.Formats;
using LoPAProxy.Engine.Formats.HuggingFace;
using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Formats.SafeTensors;
using LoPAProxy.Engine.Kernels;
using LoPAProxy.Engine.Tensors;

namespace LoPAProxy.Engine.Networks.Llama;

/// <summary>Weights of one decoder layer, matrices in PyTorch's [out, in] layout.</summary>
public sealed record LlamaLayer(
    float[] AttentionNorm, // [dim]
    float[] Wq,            // [qDim, dim]
    float[] Wk,            // [kvDim, dim]
    float[] Wv,            // [kvDim, dim]
    float[] Wo,            // [dim, qDim]
    float[] FfnNorm,       // [dim]
    float[] W1,            // [hidden, dim]  gate
    float[] W2,            // [dim, hidden]  down
    float[] W3);           // [hidden, dim]  up

/// <summary>
/// A Llama-family decoder: x → L × (x += Wo·attn(rope(Wq·n(x)), rope(Wk·n(x)), Wv·n(x)); x += W2·(silu(W1·n(x)) ⊙ W3·n(x)))
/// → RMSNorm → classifier. Inputs are embedding rows, so token ids and soft prompts enter the same way.
/// Loads llama2.c checkpoints (interleaved RoPE) and the Hugging Face layout (config.json + model.safetensors,
/// half-split RoPE as HF's rotate_half).
/// </summary>
public sealed class LlamaModel
{
    public LlamaConfig Config { get; }
    public float[] TokenEmbedding { get; }   // [vocab, dim]
    public IReadOnlyList<LlamaLayer> Layers { get; }
    public float[] FinalNorm { get; }        // [dim]
    public float[] Classifier { get; }       // [vocab, dim]; the embedding itself when tied
    public GemmBackend Gemm { get; set; } = Blas.Gemm.Default;

    public LlamaModel(LlamaConfig config, float[] tokenEmbedding, IReadOnlyList<LlamaLayer> layers, float[] finalNorm, float[] classifier)
    {
        Config = config; TokenEmbedding = tokenEmbedding; Layers = layers; FinalNorm = finalNorm; Classifier = classifier;
    }

    public static LlamaModel FromLlama2c(Llama2cCheckpoint ckpt)
    {
        Llama2cConfig c = ckpt.Config;
        Llama2cWeights w = ckpt.Weights;
        var config = new LlamaConfig(c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KvHeads, c.HeadDim, c.VocabSize, c.SeqLen, 10000f, 1e-5f, RotaryLayout.Interleaved);
        float[] L(Tensor t, int l) => t.Select(0, l).ToArray();
        var layers = Enumerable.Range(0, c.Layers).Select(l => new LlamaLayer(L(w.RmsAttention, l), L(w.Wq, l), L(w.Wk, l), L(w.Wv, l), L(w.Wo, l),
            L(w.RmsFfn, l), L(w.W1, l), L(w.W2, l), L(w.W3, l))).ToList();
        float[] emb = w.TokenEmbedding.ToArray();
        return new LlamaModel(config, emb, layers, w.RmsFinal.ToArray(), c.SharedClassifier ? emb : w.Classifier.ToArray());
    }

    /// <summary>A directory with config.json and model.safetensors in Hugging Face's LlamaForCausalLM layout.</summary>
    public static LlamaModel FromHuggingFace(string directory)
    {
        HfConfig hf = HfConfig.Load(Path.Combine(directory, "config.json"));
        if (hf.ModelType is not ("llama" or "mistral" or "qwen2")) throw new TensorFileException(Path.Combine(directory, "config.json"), $"model_type '{hf.ModelType}' is not a Llama-family decoder");
        int headDim = hf.HeadDim ?? hf.HiddenSize / hf.NumAttentionHeads;
        var config = new LlamaConfig(hf.HiddenSize, hf.IntermediateSize, hf.NumHiddenLayers, hf.NumAttentionHeads, hf.NumKeyValueHeads, headDim,
            hf.VocabSize, hf.MaxPositionEmbeddings ?? 2048, (float)hf.RopeTheta, (float)(hf.RmsNormEps ?? 1e-6), RotaryLayout.HalfSplit);
        string path = Path.Combine(directory, "model.safetensors");
        using var file = SafeTensorsFile.Open(path);
        float[] Get(string name, params int[] shape)
        {
            Tensor t = file.ReadFloat32(name);
            if (!t.Shape.SequenceEqual(shape)) throw new TensorFileException(path, $"'{name}' has shape [{string.Join(", ", t.Shape.ToArray())}], config needs [{string.Join(", ", shape)}]");
            return t.Span.ToArray();
        }
        int d = config.Dim, q = config.QDim, kv = config.KvDim, h = config.HiddenDim;
        var layers = Enumerable.Range(0, config.Layers).Select(l =>
        {
            string p = $"model.layers.{l}.";
            return new LlamaLayer(Get(p + "input_layernorm.weight", d), Get(p + "self_attn.q_proj.weight", q, d), Get(p + "self_attn.k_proj.weight", kv, d),
                Get(p + "self_attn.v_proj.weight", kv, d), Get(p + "self_attn.o_proj.weight", d, q), Get(p + "post_attention_layernorm.weight", d),
                Get(p + "mlp.gate_proj.weight", h, d), Get(p + "mlp.down_proj.weight", d, h), Get(p + "mlp.up_proj.weight", h, d));
        }).ToList();
        float[] emb = Get("model.embed_tokens.weight", config.VocabSize, d);
        float[] cls = file.Contains("lm_head.weight") && !hf.TieWordEmbeddings ? Get("lm_head.weight", config.VocabSize, d) : emb;
        return new LlamaModel(config, emb, layers, Get("model.norm.weight", d), cls);
    }

    /// <summary>Embedding rows of <paramref name="tokens"/> into <paramref name="destination"/> [tokens, dim].</summary>
    public void Embed(ReadOnlySpan<int> tokens, Span<float> destination) => Embedding.Gather(TokenEmbedding, Config.VocabSize, Config.Dim, tokens, destination);

    public LlamaState NewState(int capacity = 0) => new(Config, capacity <= 0 ? Config.MaxSeqLen : Math.Min(capacity, Config.MaxSeqLen));

    /// <summary>
    /// Runs <paramref name="count"/> input rows x [count, dim] at positions state.Length.., appends their
    /// keys and values to the cache, and writes the logits of the last row into <paramref name="logits"/> [vocab].
    /// </summary>
    public void Forward(ReadOnlySpan<float> x, int count, LlamaState state, Span<float> logits)
    {
        LlamaConfig c = Config;
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count));
        if (x.Length < count * c.Dim) throw new ArgumentException("input smaller than count × dim");
        if (state.Length + count > state.Capacity) throw new InvalidOperationException($"sequence of {state.Length + count} positions exceeds the context of {state.Capacity}");
        int pos0 = state.Length, d = c.Dim, qd = c.QDim, kvd = c.KvDim, hd = c.HiddenDim;
        state.EnsureScratch(count);
        Span<float> h = state.H.AsSpan(0, count * d), xb = state.Xb.AsSpan(0, count * d);
        Span<float> q = state.Q.AsSpan(0, count * qd), att = state.Att.AsSpan(0, count * qd);
        Span<float> a = state.A.AsSpan(0, count * hd), b = state.B.AsSpan(0, count * hd);
        x[..(count * d)].CopyTo(h);
        Span<int> positions = state.Positions.AsSpan(0, count);
        for (int i = 0; i < count; i++) positions[i] = pos0 + i;
        var shape = new Attention.Shape(1, count, pos0 + count, c.Heads, c.KvHeads, c.HeadDim);
        float scale = 1f / MathF.Sqrt(c.HeadDim);

        for (int l = 0; l < c.Layers; l++)
        {
            LlamaLayer w = Layers[l];
            Span<float> kCache = state.Keys[l], vCache = state.Values[l];
            Span<float> k = kCache.Slice(pos0 * kvd, count * kvd), v = vCache.Slice(pos0 * kvd, count * kvd);
            Norms.RmsNorm(h, w.AttentionNorm, xb, d, c.NormEps);
            Linear.Forward(xb, count, d, w.Wq, qd, default, q, Gemm);
            Linear.Forward(xb, count, d, w.Wk, kvd, default, k, Gemm);
            Linear.Forward(xb, count, d, w.Wv, kvd, default, v, Gemm);
            Rotary.Apply(q, count, c.Heads, c.HeadDim, positions, c.RopeTheta, c.Rotary);
            Rotary.Apply(k, count, c.KvHeads, c.HeadDim, positions, c.RopeTheta, c.Rotary);
            Attention.Forward(q, kCache[..((pos0 + count) * kvd)], vCache[..((pos0 + count) * kvd)], att, shape, scale, causal: true, queryOffset: pos0);
            Gemm.Sgemm(false, true, count, d, qd, 1f, att, qd, w.Wo, qd, 1f, h, d);          // h += att · Woᵀ
            Norms.RmsNorm(h, w.FfnNorm, xb, d, c.NormEps);
            Linear.Forward(xb, count, d, w.W1, hd, default, a, Gemm);
            Linear.Forward(xb, count, d, w.W3, hd, default, b, Gemm);
            Activations.Silu(a, a);
            TensorPrimitives.Multiply(a, b, a);
            Gemm.Sgemm(false, true, count, d, hd, 1f, a, hd, w.W2, hd, 1f, h, d);             // h += (silu(a) ⊙ b) · W2ᵀ
        }
        state.Length += count;
        Span<float> last = xb[..d];
        Norms.RmsNorm(h.Slice((count - 1) * d, d), FinalNorm, last, d, c.NormEps);
        Linear.Forward(last, 1, d, Classifier, c.VocabSize, default, logits, Gemm);
    }
}

/// <summary>One sequence's KV cache and scratch buffers. Never shared between concurrent requests.</summary>
public sealed class LlamaState
{
    private readonly LlamaConfig _config;
    public int Capacity { get; }
    public int Length { get; internal set; }
    internal float[][] Keys { get; }    // per layer [capacity, kvDim]
    internal float[][] Values { get; }
    internal float[] H = Array.Empty<float>(), Xb = Array.Empty<float>(), Q = Array.Empty<float>(), Att = Array.Empty<float>(),
        A = Array.Empty<float>(), B = Array.Empty<float>();
    internal int[] Positions = Array.Empty<int>();

    internal LlamaState(LlamaConfig config, int capacity)
    {
        _config = config;
        Capacity = capacity;
        Keys = Enumerable.Range(0, config.Layers).Select(_ => new float[capacity * config.KvDim]).ToArray();
        Values = Enumerable.Range(0, config.Layers).Select(_ => new float[capacity * config.KvDim]).ToArray();
    }

    /// <summary>Forgets the cached positions (the buffers are reused).</summary>
    public void Reset() => Length = 0;

    internal void EnsureScratch(int rows)
    {
        if (Positions.Length >= rows) return;
        LlamaConfig c = _config;
        H = new float[rows * c.Dim]; Xb = new float[rows * c.Dim];
        Q = new float[rows * c.QDim]; Att = new float[rows * c.QDim];
        A = new float[rows * c.HiddenDim]; B = new float[rows * c.HiddenDim];
        Positions = new int[rows];
    }
}
