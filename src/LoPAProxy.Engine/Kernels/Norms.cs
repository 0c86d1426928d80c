using System.Numerics.Tensors;

namespace LoPAProxy.Engine.Kernels;

/// <summary>Row normalisations over the last dimension of a [rows, dim] buffer. dst may alias x.</summary>
public static class Norms
{
    /// <summary>RMSNorm: x / √(mean(x²) + eps) · weight, with the float arithmetic of llama2.c's rmsnorm.</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> dst, int dim, float eps)
    {
        CheckRows(x.Length, dst.Length, dim);
        for (int off = 0; off < x.Length; off += dim)
        {
            ReadOnlySpan<float> row = x.Slice(off, dim);
            float ss = TensorPrimitives.Dot(row, row) / dim + eps;
            float inv = 1f / MathF.Sqrt(ss);
            Span<float> o = dst.Slice(off, dim);
            TensorPrimitives.Multiply(row, inv, o);
            TensorPrimitives.Multiply(o, weight, o);
        }
    }

    /// <summary>
    /// Backward of <see cref="RmsNorm"/>: with r = 1/√(mean(x²)+eps) and x̂ = x·r, dx = r·(w∘dy − x̂·mean(x̂∘w∘dy)),
    /// dweight += Σ_rows dy∘x̂ (skipped when dweight is empty).
    /// </summary>
    public static void RmsNormBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> dy,
        Span<float> dx,
        Span<float> dweight, int dim, float eps)
    {
        CheckRows(x.Length, dx.Length, dim);
        Span<float> t = dim <= 1024 ? stackalloc float[dim] : new float[dim];
        for (int off = 0; off < x.Length; off += dim)
        {
            ReadOnlySpan<float> row = x.Slice(off, dim), g = dy.Slice(off, dim);
            float r = 1f / MathF.Sqrt(TensorPrimitives.Dot(row, row) / dim + eps);
            if (!dweight.IsEmpty)
                for (int i = 0; i < dim; i++) dweight[i] += g[i] * row[i] * r;
            TensorPrimitives.Multiply(g, weight, t);                       // w∘dy
            float c = TensorPrimitives.Dot(t, row) * r / dim;              // mean(x̂∘w∘dy)
            Span<float> o = dx.Slice(off, dim);
            for (int i = 0; i < dim; i++) o[i] += r * (t[i] - row[i] * r * c);
        }
    }

    private static void CheckRows(int xLength, int dstLength, int dim)
    {
        if (dim <= 0 || xLength % dim != 0 || dstLength < xLength)
            throw new ArgumentException($"normalisation over dim {dim} needs whole rows (x has {xLength}, dst {dstLength})");
    }
}
