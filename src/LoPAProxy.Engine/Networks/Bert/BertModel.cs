using LoPAProxy.Engine.Blas;
using LoPAProxy.Engine.Formats;
using LoPAProxy.Engine.Formats.HuggingFace;
using LoPAProxy.Engine.Formats.SafeTensors;
using LoPAProxy.Engine.Kernels;

namespace LoPAProxy.Engine.Networks.Bert;

/// <summary>
/// A BERT-family encoder in Hugging Face's layout (what sentence-transformers models ship): word + position +
/// token-type embeddings → LayerNorm → L × post-LayerNorm layers (self-attention, GELU feed-forward) → hidden
/// states [tokens, hidden]. Weight names may carry a "bert." prefix; old gamma/beta LayerNorm names are accepted.
/// </summary>
public sealed class BertModel
{
    // Qkv [3·hidden, hidden] stacks the query, key and value projections so one GEMM computes all three.
    private sealed record Layer(float[] Qkv, float[] QkvB, float[] O, float[] Ob,
        float[] Ln1, float[] Ln1b, float[] I, float[] Ib, float[] Out, float[] Outb, float[] Ln2, float[] Ln2b);

    private readonly float[] _word, _position, _tokenType, _embLn, _embLnb;
    private readonly Layer[] _layers;

    public int Hidden { get; }
    public int Heads { get; }
    public int Intermediate { get; }
    public int MaxPositions { get; }
    public int VocabSize { get; }
    public float Eps { get; }
    public GeluForm Activation { get; }
    public GemmBackend Gemm { get; set; } = Blas.Gemm.Default;

    private BertModel(HfConfig c, SafeTensorsFile f, string path)
    {
        Hidden = c.HiddenSize; Heads = c.NumAttentionHeads; Intermediate = c.IntermediateSize; VocabSize = c.VocabSize;
        MaxPositions = c.MaxPositionEmbeddings ?? 512; Eps = (float)(c.LayerNormEps ?? 1e-12);
        Activation = c.HiddenAct switch
        {
            null or "gelu" => GeluForm.Erf,
            "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => GeluForm.Tanh,
            var a => throw new TensorFileException(path, $"hidden_act '{a}' is not supported (gelu, gelu_new, gelu_pytorch_tanh)"),
        };
        string prefix = f.Contains("bert.embeddings.word_embeddings.weight") ? "bert." : "";
        float[] Get(string name, params int[] shape)
        {
            string full = prefix + name;
            if (!f.Contains(full))
            {
                // Checkpoints converted from TF name LayerNorm parameters gamma/beta.
                string alt = full.Replace("LayerNorm.weight", "LayerNorm.gamma").Replace("LayerNorm.bias", "LayerNorm.beta");
                if (!f.Contains(alt)) throw new TensorFileException(path, $"tensor '{full}' is missing");
                full = alt;
            }
            var t = f.ReadFloat32(full);
            if (!t.Shape.SequenceEqual(shape)) throw new TensorFileException(path, $"'{full}' has shape [{string.Join(", ", t.Shape.ToArray())}], expected [{string.Join(", ", shape)}]");
            return t.Span.ToArray();
        }
        int h = Hidden, inter = Intermediate;
        _word = Get("embeddings.word_embeddings.weight", VocabSize, h);
        _position = Get("embeddings.position_embeddings.weight", MaxPositions, h);
        _tokenType = Get("embeddings.token_type_embeddings.weight", c.TypeVocabSize ?? 2, h);
        _embLn = Get("embeddings.LayerNorm.weight", h); _embLnb = Get("embeddings.LayerNorm.bias", h);
        _layers = Enumerable.Range(0, c.NumHiddenLayers).Select(l =>
        {
            string p = $"encoder.layer.{l}.";
            float[] Stack(string part) => new[] { "query", "key", "value" }.SelectMany(m => Get(p + $"attention.self.{m}.{part}", part == "weight" ? new[] { h, h } : new[] { h })).ToArray();
            return new Layer(Stack("weight"), Stack("bias"),
                Get(p + "attention.output.dense.weight", h, h), Get(p + "attention.output.dense.bias", h),
                Get(p + "attention.output.LayerNorm.weight", h), Get(p + "attention.output.LayerNorm.bias", h),
                Get(p + "intermediate.dense.weight", inter, h), Get(p + "intermediate.dense.bias", inter),
                Get(p + "output.dense.weight", h, inter), Get(p + "output.dense.bias", h),
                Get(p + "output.LayerNorm.weight", h), Get(p + "output.LayerNorm.bias", h));
        }).ToArray();
    }

    /// <summary>A directory with config.json and model.safetensors.</summary>
    public static BertModel Load(string directory)
    {
        HfConfig c = HfConfig.Load(Path.Combine(directory, "config.json"));
        string path = Path.Combine(directory, "model.safetensors");
        if (c.ModelType is not ("bert" or "roberta" or "xlm-roberta" or "distilbert" or "mpnet" or "camembert"))
            throw new TensorFileException(Path.Combine(directory, "config.json"), $"model_type '{c.ModelType}' is not a BERT-family encoder");
        using var f = SafeTensorsFile.Open(path);
        return new BertModel(c, f, path);
    }

    /// <summary>ids [t] (token type 0, positions 0..t−1) → last hidden states [t, hidden].</summary>
    public void Forward(ReadOnlySpan<int> ids, Span<float> output)
    {
        int t = ids.Length, h = Hidden;
        if (t == 0 || t > MaxPositions) throw new ArgumentOutOfRangeException(nameof(ids), $"{t} tokens; the model takes 1 to {MaxPositions}");
        if (output.Length < t * h) throw new ArgumentException("output too small");
        var x = new float[t * h];
        Embedding.Gather(_word, VocabSize, h, ids, x);
        for (int p = 0; p < t; p++)
        {
            Span<float> row = x.AsSpan(p * h, h);
            System.Numerics.Tensors.TensorPrimitives.Add(row, _position.AsSpan(p * h, h), row);
            System.Numerics.Tensors.TensorPrimitives.Add(row, _tokenType.AsSpan(0, h), row);
        }
        Norms.LayerNorm(x, _embLn, _embLnb, x, h, Eps);
        float[] qkv = new float[t * 3 * h], q = new float[t * h], k = new float[t * h], v = new float[t * h], att = new float[t * h], tmp = new float[t * h], inter = new float[t * Intermediate];
        float scale = 1f / MathF.Sqrt(h / Heads);
        foreach (Layer l in _layers)
        {
            Linear.Forward(x, t, h, l.Qkv, 3 * h, l.QkvB, qkv, Gemm);
            for (int p = 0; p < t; p++)
            {
                qkv.AsSpan(p * 3 * h, h).CopyTo(q.AsSpan(p * h));
                qkv.AsSpan(p * 3 * h + h, h).CopyTo(k.AsSpan(p * h));
                qkv.AsSpan(p * 3 * h + 2 * h, h).CopyTo(v.AsSpan(p * h));
            }
            Attention.Forward(q, k, v, att, new Attention.Shape(1, t, t, Heads, Heads, h / Heads), scale, causal: false, gemm: Gemm);
            Linear.Forward(att, t, h, l.O, h, l.Ob, tmp, Gemm);
            System.Numerics.Tensors.TensorPrimitives.Add(tmp, x, tmp);
            Norms.LayerNorm(tmp, l.Ln1, l.Ln1b, x, h, Eps);
            Linear.Forward(x, t, h, l.I, Intermediate, l.Ib, inter, Gemm);
            Activations.Gelu(inter, inter, Activation);
            Linear.Forward(inter, t, Intermediate, l.Out, h, l.Outb, tmp, Gemm);
            System.Numerics.Tensors.TensorPrimitives.Add(tmp, x, tmp);
            Norms.LayerNorm(tmp, l.Ln2, l.Ln2b, x, h, Eps);
        }
        x.AsSpan(0, t * h).CopyTo(output);
    }
}
