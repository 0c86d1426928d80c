using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using LoPAProxy.Engine.Blas;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// One GEMM, C[M,N] = A[M,K]·op(B), three ways in the same run: OpenBLAS's cblas_sgemm called directly
/// (the baseline), OpenBLAS through our seam, and the managed backend.
/// </summary>
public abstract unsafe class GemmBenchmarkBase : IWork
{
    protected abstract (int M, int N, int K, bool TransB) Shape { get; }

    private float[] _a = null!, _b = null!, _c = null!;
    private OpenBlasGemm _blas = null!;
    private readonly ManagedGemm _managed = new();

    public (double Amount, string Unit) Work() => (2.0 * Shape.M * Shape.N * Shape.K, "GFLOP/s");

    [GlobalSetup]
    public void Setup()
    {
        var (m, n, k, _) = Shape;
        var rng = new Random(1);
        _a = Enumerable.Range(0, m * k).Select(_ => (float)rng.NextDouble()).ToArray();
        _b = Enumerable.Range(0, n * k).Select(_ => (float)rng.NextDouble()).ToArray();
        _c = new float[m * n];
        _blas = OpenBlasGemm.TryLoad(out string why) ?? throw new InvalidOperationException(why);
    }

    [Benchmark(Baseline = true, Description = "openblas-direct")]
    public void OpenBlasDirect()
    {
        var (m, n, k, tb) = Shape;
        fixed (float* a = _a) fixed (float* b = _b) fixed (float* c = _c)
            Native.cblas_sgemm(101, 111, tb ? 112 : 111, m, n, k, 1f, a, k, b, tb ? k : n, 0f, c, n);
    }

    [Benchmark(Description = "seam-openblas")]
    public void SeamOpenBlas()
    {
        var (m, n, k, tb) = Shape;
        _blas.Sgemm(false, tb, m, n, k, 1f, _a, k, _b, tb ? k : n, 0f, _c, n);
    }

    [Benchmark(Description = "managed")]
    public void Managed()
    {
        var (m, n, k, tb) = Shape;
        _managed.Sgemm(false, tb, m, n, k, 1f, _a, k, _b, tb ? k : n, 0f, _c, n);
    }
}

/// <summary>The Linear-layer shape (weights in PyTorch's [out, in] layout, so B is transposed) over the grid.</summary>
public class GemmBenchmarks : GemmBenchmarkBase
{
    [Params(1, 8, 128)] public int M { get; set; }
    [Params(256, 1024, 4096)] public int N { get; set; }
    [Params(256, 1024, 4096)] public int K { get; set; }
    protected override (int M, int N, int K, bool TransB) Shape => (M, N, K, true);
}

/// <summary>The managed-fallback target: 512³, B plain and transposed.</summary>
public class Gemm512Benchmarks : GemmBenchmarkBase
{
    [Params(false, true)] public bool TransB { get; set; }
    protected override (int M, int N, int K, bool TransB) Shape => (512, 512, 512, TransB);
}

internal static unsafe class Native
{
    [DllImport("libopenblas.so.0")]
    public static extern void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);
}
