using LoPAProxy.Engine.Blas;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Engine.Tests.Blas;

public class GemmTests
{
    /// <summary>The managed kernel is the only backend left (the soft-prompt heads'; see Gemm's doc comment).</summary>
    public static IEnumerable<object[]> Backends() => new[] { new object[] { "managed" } };

    internal static GemmBackend Backend(string name) =>
        name == "managed" ? new ManagedGemm() : throw new ArgumentException(name);

    /// <summary>Reference: plain triple loop in double.</summary>
    private static void Reference(bool ta, bool tb, int m, int n, int k, float alpha, float[] a, int lda, float[] b, int ldb, float beta, float[] c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
                c[i * ldc + j] = (float)(alpha * s + (beta == 0 ? 0 : beta * c[i * ldc + j]));
            }
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Every_transpose_combination_matches_the_reference_on_random_shapes(string backend)
    {
        GemmBackend gemm = Backend(backend);
        var rng = new Random(42);
        int[] sizes = { 1, 2, 3, 7, 8, 9, 31, 32, 33, 65, 130, 257, 300 };
        for (int trial = 0; trial < 60; trial++)
        {
            int m = sizes[rng.Next(sizes.Length)], n = sizes[rng.Next(sizes.Length)], k = sizes[rng.Next(sizes.Length)];
            foreach (bool ta in new[] { false, true })
            {
                foreach (bool tb in new[] { false, true })
                {
                    int pad = rng.Next(3);
                    int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
                    float[] a = Rand.Floats(rng, (ta ? k : m) * lda), b = Rand.Floats(rng, (tb ? n : k) * ldb);
                    float[] c = Rand.Floats(rng, m * ldc), expected = (float[])c.Clone();
                    float alpha = trial % 3 == 0 ? 1f : 0.75f, beta = trial % 4 switch { 0 => 0f, 1 => 1f, _ => -0.5f };
                    Reference(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, expected, ldc);
                    gemm.Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                    Rand.AssertClose(expected, c, 2e-5f * MathF.Sqrt(k),
                        $"{backend} m={m} n={n} k={k} tA={ta} tB={tb}");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Large_products_split_across_threads_match_the_reference(string backend)
    {
        GemmBackend gemm = Backend(backend);
        var rng = new Random(3);
        foreach (var (m, n, k) in new[] { (1, 3000, 513), (3, 700, 300), (520, 33, 270), (129, 300, 600) })
        {
            float[] a = Rand.Floats(rng, m * k), b = Rand.Floats(rng, n * k), c = new float[m * n], expected = new float[m * n];
            Reference(false, true, m, n, k, 1f, a, k, b, k, 0f, expected, n);
            gemm.Sgemm(false, true, m, n, k, 1f, a, k, b, k, 0f, c, n);
            Rand.AssertClose(expected, c, 1e-4f, $"{backend} {m}x{n}x{k}");
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Beta_zero_clears_nan_in_c_and_k_zero_scales(string backend)
    {
        GemmBackend gemm = Backend(backend);
        float[] a = { 1, 2 }, b = { 3, 4 }, c = { float.NaN };
        gemm.Sgemm(false, false, 1, 1, 2, 1f, a, 2, b, 1, 0f, c, 1);
        Assert.Equal(11f, c[0]);
        float[] c2 = { 5f, 6f };
        gemm.Sgemm(false, false, 1, 2, 0, 1f, Array.Empty<float>(), 1, Array.Empty<float>(), 2, 2f, c2, 2);
        Assert.Equal(new[] { 10f, 12f }, c2);
    }

    [Fact]
    public void The_seam_rejects_buffers_too_small_for_their_shape()
    {
        GemmBackend gemm = new ManagedGemm();
        var ex = Assert.Throws<ArgumentException>(() => gemm.Sgemm(false, false, 2, 2, 2, 1f, new float[3], 2, new float[4], 2, 0f, new float[4], 2));
        Assert.Contains("A has 3 elements", ex.Message);
        Assert.Throws<ArgumentException>(() => gemm.Sgemm(false, true, 2, 2, 3, 1f, new float[6], 3, new float[6], 2, 0f, new float[4], 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => gemm.Sgemm(false, false, -1, 2, 2, 1f, new float[4], 2, new float[4], 2, 0f, new float[4], 2));
    }
}
