namespace LoPAProxy.Engine.Blas;

/// <summary>
/// Sends skinny products (m ≤ 8 rows of C) to the managed backend, whose no-packing path beats OpenBLAS
/// there (decoding one token is all such shapes; measured in docs/benchmarks.md), and everything else to
/// the large-matrix backend.
/// </summary>
public sealed unsafe class ShapeRoutedGemm(GemmBackend large, ManagedGemm small) : GemmBackend
{
    public GemmBackend Large => large;
    /// <summary>Products with fewer rows than this go to the managed backend.</summary>
    public const int RouteBelow = 9;

    public override string Name => $"{large.Name} (m < {RouteBelow}: {small.Name})";

    protected override void Compute(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        GemmBackend target = m < RouteBelow ? small : large;
        target.ComputeUnchecked(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
}
