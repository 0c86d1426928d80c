namespace LoPAProxy.Engine.Blas;

/// <summary>
/// The single seam every matrix product in the project goes through:
/// row-major C[m,n] = alpha · op(A)[m,k] · op(B)[k,n] + beta · C.
/// The public entry point validates dimensions and buffer lengths once; a backend (OpenBLAS,
/// managed SIMD, later cuBLAS / TorchSharp / ONNX Runtime) only implements <see cref="Compute"/>.
/// </summary>
public abstract unsafe class GemmBackend
{
    public abstract string Name { get; }

    public void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentOutOfRangeException(nameof(m), $"negative GEMM size m={m} n={n} k={k}");
        CheckOperand("A", a.Length, transA ? k : m, transA ? m : k, lda);
        CheckOperand("B", b.Length, transB ? n : k, transB ? k : n, ldb);
        CheckOperand("C", c.Length, m, n, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0f)
        {
            ScaleC(m, n, beta, c, ldc);
            return;
        }
        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
            Compute(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
    }

    /// <summary>For composite backends: forward already-validated arguments.</summary>
    internal void ComputeUnchecked(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
        => Compute(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>Arguments are already validated; m, n, k &gt; 0 and alpha ≠ 0.</summary>
    protected abstract void Compute(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    /// <summary>C = beta · C over the m×n region; beta = 0 clears (NaNs in C do not survive, as in BLAS).</summary>
    internal static void ScaleC(int m, int n, float beta, Span<float> c, int ldc)
    {
        if (beta == 1f) return;
        for (int i = 0; i < m; i++)
        {
            Span<float> row = c.Slice(i * ldc, n);
            if (beta == 0f) row.Clear();
            else System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }

    private static void CheckOperand(string name, int length, int rows, int cols, int ld)
    {
        if (ld < Math.Max(1, cols))
            throw new ArgumentException($"GEMM: leading dimension of {name} is {ld}, needs at least {Math.Max(1, cols)}");
        if (rows == 0 || cols == 0) return;
        long needed = (long)(rows - 1) * ld + cols;
        if (length < needed)
            throw new ArgumentException($"GEMM: {name} has {length} elements, a {rows}×{cols} matrix with leading dimension {ld} needs {needed}");
    }
}
