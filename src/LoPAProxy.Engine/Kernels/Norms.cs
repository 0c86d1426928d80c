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

    private static void CheckRows(int xLength, int dstLength, int dim)
    {
        if (dim <= 0 || xLength % dim != 0 || dstLength < xLength)
            throw new ArgumentException($"normalisation over dim {dim} needs whole rows (x has {xLength}, dst {dstLength})");
    }
}
