namespace LoPAProxy.Engine.Blas;

/// <summary>
/// Sends matrix-vector shapes (m below <see cref="ManagedGemm.SmallM"/>) to the managed backend, whose
/// no-packing path beats OpenBLAS there (decoding one token is all such shapes), and everything else to
/// the large-matrix backend. Measured in docs/benchmarks.md.
/// </summary>
public sealed unsafe class ShapeRoutedGemm(GemmBackend large, ManagedGemm small) : GemmBackend
{
    public GemmBackend Large => large;
    public override string Name => $"{large.Name} (m < {ManagedGemm.SmallM}: {small.Name})";

    protected override void Compute(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        GemmBackend target = m < ManagedGemm.SmallM ? small : large;
        target.ComputeUnchecked(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
}
