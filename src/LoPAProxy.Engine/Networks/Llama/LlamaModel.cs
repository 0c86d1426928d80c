using LoPAProxy.Engine.Formats;
using LoPAProxy.Engine.Formats.HuggingFace;
using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Formats.SafeTensors;

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
/// A Llama-family decoder's weights in float32, for the trainer (TorchSharp builds the network from them; the model
/// server runs GGUF files on llama.cpp). Loads llama2.c checkpoints (interleaved RoPE) and the Hugging Face layout
/// (config.json + model.safetensors, half-split RoPE as HF's rotate_half); Config.Rotary says which.
/// </summary>
public sealed class LlamaModel
{
    public LlamaConfig Config { get; }
    public float[] TokenEmbedding { get; }   // [vocab, dim]
    public IReadOnlyList<LlamaLayer> Layers { get; }
    public float[] FinalNorm { get; }        // [dim]
    public float[] Classifier { get; }       // [vocab, dim]; the embedding itself when tied

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
}
