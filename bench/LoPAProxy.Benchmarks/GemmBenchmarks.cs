using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using LoPAProxy.Engine.Blas;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// C[M,N] = A[M,K]·B[N,K]ᵀ (the Linear-layer shape: weights in PyTorch's [out, in] layout) through
/// our seam with OpenBLAS, the managed backend, and OpenBLAS's cblas_sgemm called directly.
/// </summary>
public unsafe class GemmBenchmarks : IWork
{
    [Params(1, 8, 128)] public int M { get; set; }
    [Params(256, 1024, 4096)] public int N { get; set; }
    [Params(256, 1024, 4096)] public int K { get; set; }

    private float[] _a = null!, _b = null!, _c = null!;
    private OpenBlasGemm _blas = null!;
    private readonly ManagedGemm _managed = new();

    public (double Amount, string Unit) Work() => (2.0 * M * N * K, "GFLOP/s");

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _a = Enumerable.Range(0, M * K).Select(_ => (float)rng.NextDouble()).ToArray();
        _b = Enumerable.Range(0, N * K).Select(_ => (float)rng.NextDouble()).ToArray();
        _c = new float[M * N];
        _blas = OpenBlasGemm.TryLoad(out string why) ?? throw new InvalidOperationException(why);
    }

    [Benchmark(Baseline = true, Description = "openblas-direct")]
    public void OpenBlasDirect()
    {
        fixed (float* a = _a) fixed (float* b = _b) fixed (float* c = _c)
            Native.cblas_sgemm(101, 111, 112, M, N, K, 1f, a, K, b, K, 0f, c, N);
    }

    [Benchmark(Description = "seam-openblas")]
    public void SeamOpenBlas() => _blas.Sgemm(false, true, M, N, K, 1f, _a, K, _b, K, 0f, _c, N);

    [Benchmark(Description = "managed")]
    public void Managed() => _managed.Sgemm(false, true, M, N, K, 1f, _a, K, _b, K, 0f, _c, N);
}

/// <summary>The managed-fallback target: 512³, both operands untransposed and transposed.</summary>
public unsafe class Gemm512Benchmarks : IWork
{
    [Params(false, true)] public bool TransB { get; set; }
    private const int S = 512;
    private float[] _a = null!, _b = null!, _c = null!;
    private OpenBlasGemm _blas = null!;
    private readonly ManagedGemm _managed = new();

    public (double Amount, string Unit) Work() => (2.0 * S * S * S, "GFLOP/s");

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(2);
        _a = Enumerable.Range(0, S * S).Select(_ => (float)rng.NextDouble()).ToArray();
        _b = Enumerable.Range(0, S * S).Select(_ => (float)rng.NextDouble()).ToArray();
        _c = new float[S * S];
        _blas = OpenBlasGemm.TryLoad(out string why) ?? throw new InvalidOperationException(why);
    }

    [Benchmark(Baseline = true, Description = "openblas-direct")]
    public void OpenBlasDirect()
    {
        fixed (float* a = _a) fixed (float* b = _b) fixed (float* c = _c)
            Native.cblas_sgemm(101, 111, TransB ? 112 : 111, S, S, S, 1f, a, S, b, S, 0f, c, S);
    }

    [Benchmark(Description = "seam-openblas")]
    public void SeamOpenBlas() => _blas.Sgemm(false, TransB, S, S, S, 1f, _a, S, _b, S, 0f, _c, S);

    [Benchmark(Description = "managed")]
    public void Managed() => _managed.Sgemm(false, TransB, S, S, S, 1f, _a, S, _b, S, 0f, _c, S);
}

internal static unsafe class Native
{
    [DllImport("libopenblas.so.0")]
    public static extern void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);
}
