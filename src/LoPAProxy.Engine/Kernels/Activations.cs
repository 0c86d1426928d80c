using System.Numerics.Tensors;

namespace LoPAProxy.Engine.Kernels;

public enum GeluForm { Erf, Tanh }

/// <summary>Point-wise non-linearities, dst may alias src.</summary>
public static class Activations
{
    public static void Sigmoid(ReadOnlySpan<float> src, Span<float> dst) => TensorPrimitives.Sigmoid(src, dst);

    public static void Tanh(ReadOnlySpan<float> src, Span<float> dst) => TensorPrimitives.Tanh(src, dst);

    /// <summary>SiLU / swish: x · σ(x) = x / (1 + e^(−x)).</summary>
    public static void Silu(ReadOnlySpan<float> src, Span<float> dst)
    {
        // Chunked through a stack buffer so dst may alias src.
        Span<float> t = stackalloc float[256];
        for (int i = 0; i < src.Length; i += t.Length)
        {
            int n = Math.Min(t.Length, src.Length - i);
            ReadOnlySpan<float> x = src.Slice(i, n);
            Span<float> tn = t[..n];
            TensorPrimitives.Negate(x, tn);
            TensorPrimitives.Exp(tn, tn);
            TensorPrimitives.Add(tn, 1f, tn);
            TensorPrimitives.Divide(x, tn, dst.Slice(i, n));
        }
    }

    /// <summary>ReLU: max(x, 0).</summary>
    public static void Relu(ReadOnlySpan<float> src, Span<float> dst) => TensorPrimitives.Max(src, 0f, dst);

    /// <summary>Above this many elements GELU splits its work across cores (it costs an exp and a division per element).</summary>
    private const int ParallelFrom = 1 << 16;

    /// <summary>GELU: exact 0.5·x·(1 + erf(x/√2)), or PyTorch's approximate='tanh' form.</summary>
    public static unsafe void Gelu(ReadOnlySpan<float> src, Span<float> dst, GeluForm form = GeluForm.Erf)
    {
        if (src.Length >= ParallelFrom && Environment.ProcessorCount > 1)
        {
            int parts = Environment.ProcessorCount, n = src.Length;
            fixed (float* ps = src) fixed (float* pd = dst)
            {
                float* s = ps, d = pd;
                Parallel.For(0, parts, i =>
                {
                    int lo = (int)((long)n * i / parts), hi = (int)((long)n * (i + 1) / parts);
                    GeluRange(new ReadOnlySpan<float>(s + lo, hi - lo), new Span<float>(d + lo, hi - lo), form);
                });
            }
            return;
        }
        GeluRange(src, dst, form);
    }

    private static void GeluRange(ReadOnlySpan<float> src, Span<float> dst, GeluForm form)
    {
        Span<float> t = stackalloc float[256];
        for (int i = 0; i < src.Length; i += t.Length)
        {
            int n = Math.Min(t.Length, src.Length - i);
            ReadOnlySpan<float> x = src.Slice(i, n);
            Span<float> tn = t[..n], o = dst.Slice(i, n);
            if (form == GeluForm.Erf)
            {
                TensorPrimitives.Multiply(x, 0.70710678118654752f, tn);
                Erf(tn, tn);
            }
            else
            {
                // tanh(√(2/π) · (x + 0.044715 x³))
                TensorPrimitives.Multiply(x, x, tn);
                TensorPrimitives.Multiply(tn, 0.044715f, tn);
                TensorPrimitives.Add(tn, 1f, tn);
                TensorPrimitives.Multiply(tn, x, tn);
                TensorPrimitives.Multiply(tn, 0.79788456080286535f, tn);
                TensorPrimitives.Tanh(tn, tn);
            }
            TensorPrimitives.Add(tn, 1f, tn);
            TensorPrimitives.Multiply(tn, x, tn);
            TensorPrimitives.Multiply(tn, 0.5f, o);
        }
    }

    /// <summary>
    /// Element-wise erf in float32 (Abramowitz–Stegun 7.1.26 refined: |error| ≤ 1.5e-7), vectorised:
    /// erf(|x|) = 1 − t·P(t)·e^(−x²), t = 1/(1 + p|x|), then the sign of x.
    /// </summary>
    public static void Erf(ReadOnlySpan<float> src, Span<float> dst)
    {
        // Three scratch rows so dst may alias src.
        Span<float> t = stackalloc float[256], e = stackalloc float[256], p = stackalloc float[256];
        for (int i = 0; i < src.Length; i += t.Length)
        {
            int n = Math.Min(t.Length, src.Length - i);
            ReadOnlySpan<float> x = src.Slice(i, n);
            Span<float> tn = t[..n], en = e[..n], pn = p[..n];
            TensorPrimitives.Multiply(x, x, en);
            TensorPrimitives.Negate(en, en);
            TensorPrimitives.Exp(en, en);                                   // e^(−x²)
            TensorPrimitives.Abs(x, tn);
            TensorPrimitives.Multiply(tn, 0.3275911f, tn);
            TensorPrimitives.Add(tn, 1f, tn);
            TensorPrimitives.Reciprocal(tn, tn);                            // t = 1 / (1 + p|x|)
            TensorPrimitives.Multiply(tn, 1.061405429f, pn);                  // Horner on a5..a1
            TensorPrimitives.Add(pn, -1.453152027f, pn);
            TensorPrimitives.MultiplyAdd(pn, tn, 1.421413741f, pn);
            TensorPrimitives.MultiplyAdd(pn, tn, -0.284496736f, pn);
            TensorPrimitives.MultiplyAdd(pn, tn, 0.254829592f, pn);
            TensorPrimitives.Multiply(pn, tn, pn);
            TensorPrimitives.Multiply(pn, en, pn);
            TensorPrimitives.Subtract(1f, pn, pn);                          // erf(|x|)
            TensorPrimitives.CopySign(pn, x, dst.Slice(i, n));
        }
    }
}
