using LoPAProxy.Engine.Blas;

namespace LoPAProxy.Engine.Kernels;

/// <summary>
/// Fully connected layer for the soft-prompt heads: y [n, out] = x [n, in] · Wᵀ + bias, W [out, in] (PyTorch layout),
/// on the managed GEMM (kept for byte-stable Z; see <see cref="Blas.Gemm"/>).
/// </summary>
public static class Linear
{
    public static void Forward(ReadOnlySpan<float> x, int rows, int inFeatures, ReadOnlySpan<float> weight, int outFeatures,
        ReadOnlySpan<float> bias, Span<float> y, GemmBackend? gemm = null)
    {
        (gemm ?? Gemm.Managed).Sgemm(false, true, rows, outFeatures, inFeatures, 1f, x, inFeatures, weight, inFeatures,
            0f, y, outFeatures);
        if (bias.IsEmpty) return;
        if (bias.Length != outFeatures) throw new ArgumentException($"bias has {bias.Length} values, layer has {outFeatures} outputs");
        for (int r = 0; r < rows; r++)
        {
            Span<float> row = y.Slice(r * outFeatures, outFeatures);
            System.Numerics.Tensors.TensorPrimitives.Add(row, bias, row);
        }
    }
}
