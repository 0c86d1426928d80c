using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LoPAProxy.Engine.Blas;

/// <summary>
/// Managed GEMM, BLIS-style: op(B) is packed into KC×NR slivers (L1), op(A) into MC×KC blocks of
/// MR-row slivers (L2), and an MR×NR register-blocked micro-kernel (16 Vector512 accumulators)
/// does all the arithmetic. Transposes are absorbed by the packing, so one micro-kernel serves
/// all four cases. Work is split across cores by columns (or rows when C is tall).
/// Vector512 falls back to paired Vector256 in software on CPUs without AVX-512: slower, same results.
/// </summary>
public sealed unsafe class ManagedGemm : GemmBackend
{
    internal const int MR = 8, NR = 32, KC = 256, MC = 128, NC = 2048;
    private const long ParallelThresholdFlops = 1L << 21;
    /// <summary>Below this many rows of C, B is streamed without packing (matrix-vector shapes).</summary>
    public const int SmallM = 16;

    public override string Name => "managed";

    /// <summary>Worker count; defaults to the processor count.</summary>
    public int Threads { get; set; } = Environment.ProcessorCount;

    protected override void Compute(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        var job = new Job(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        long flops = 2L * m * n * k;
        int workers = flops < ParallelThresholdFlops ? 1 : Math.Max(1, Threads);
        if (m < SmallM)
        {
            // Matrix-vector shapes: packing would cost as much as the arithmetic, so stream B directly.
            int chunks = Math.Min(workers, (n + 63) / 64);
            if (chunks <= 1) { job.RunSmallM(m, 0, n); return; }
            Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = chunks }, w =>
                job.RunSmallM(m, (int)((long)n * w / chunks), (int)((long)n * (w + 1) / chunks)));
            return;
        }
        bool splitColumns = n >= m;
        int units = splitColumns ? (n + NR - 1) / NR : (m + MR - 1) / MR;
        workers = Math.Min(workers, units);
        if (workers == 1) { job.Run(0, m, 0, n); return; }
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
        {
            int lo = (int)((long)units * w / workers), hi = (int)((long)units * (w + 1) / workers);
            if (splitColumns) job.Run(0, m, lo * NR, Math.Min(n, hi * NR));
            else job.Run(lo * MR, Math.Min(m, hi * MR), 0, n);
        });
    }

    /// <summary>One GEMM's arguments; <see cref="Run"/> computes a rectangle of C with private pack buffers.</summary>
    private readonly struct Job
    {
        private readonly bool _transA, _transB;
        private readonly int _k, _lda, _ldb, _ldc;
        private readonly float _alpha, _beta;
        private readonly float* _a, _b, _c;

        public Job(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
        {
            _transA = transA; _transB = transB; _k = k; _alpha = alpha; _beta = beta;
            _a = a; _lda = lda; _b = b; _ldb = ldb; _c = c; _ldc = ldc;
        }

        /// <summary>
        /// Columns [colStart, colEnd) of all m (&lt; SmallM) rows without packing. B is streamed once: each of its
        /// rows meets every (cached) row of A — dot products when B is transposed, row multiply-adds when not.
        /// </summary>
        public void RunSmallM(int m, int colStart, int colEnd)
        {
            int cols = colEnd - colStart;
            if (cols <= 0) return;
            // Rows of op(A), contiguous (copied when A is transposed).
            var aRows = new float[m][];
            for (int i = 0; i < m; i++)
            {
                aRows[i] = new float[_k];
                for (int p = 0; p < _k; p++) aRows[i][p] = _transA ? _a[(long)p * _lda + i] : _a[(long)i * _lda + p];
            }
            if (_transB)
            {
                for (int j = 0; j < cols; j++)
                {
                    var bRow = new ReadOnlySpan<float>(_b + (long)(colStart + j) * _ldb, _k);
                    for (int i = 0; i < m; i++)
                    {
                        float dot = TensorPrimitives.Dot(aRows[i], bRow);
                        float* cij = _c + (long)i * _ldc + colStart + j;
                        *cij = _beta == 0f ? _alpha * dot : _beta * *cij + _alpha * dot;
                    }
                }
                return;
            }
            for (int i = 0; i < m; i++) ScaleC(1, cols, _beta, new Span<float>(_c + (long)i * _ldc + colStart, cols), cols);
            for (int p = 0; p < _k; p++)
            {
                var bRow = new ReadOnlySpan<float>(_b + (long)p * _ldb + colStart, cols);
                for (int i = 0; i < m; i++)
                {
                    var cRow = new Span<float>(_c + (long)i * _ldc + colStart, cols);
                    TensorPrimitives.MultiplyAdd(bRow, _alpha * aRows[i][p], cRow, cRow);
                }
            }
        }

        public void Run(int rowStart, int rowEnd, int colStart, int colEnd)
        {
            int rows = rowEnd - rowStart, cols = colEnd - colStart;
            if (rows <= 0 || cols <= 0) return;
            for (int i = rowStart; i < rowEnd; i++)
                ScaleC(1, cols, _beta, new Span<float>(_c + (long)i * _ldc + colStart, cols), cols);

            int ncMax = Math.Min(NC, RoundUp(cols, NR));
            int mcMax = Math.Min(MC, RoundUp(rows, MR));
            float* packB = (float*)NativeMemory.AlignedAlloc((nuint)(KC * ncMax * sizeof(float)), 64);
            float* packA = (float*)NativeMemory.AlignedAlloc((nuint)(KC * mcMax * sizeof(float)), 64);
            try
            {
                for (int jc = colStart; jc < colEnd; jc += NC)
                {
                    int nc = Math.Min(NC, colEnd - jc);
                    for (int pc = 0; pc < _k; pc += KC)
                    {
                        int kc = Math.Min(KC, _k - pc);
                        PackB(packB, pc, kc, jc, nc);
                        for (int ic = rowStart; ic < rowEnd; ic += MC)
                        {
                            int mc = Math.Min(MC, rowEnd - ic);
                            PackA(packA, ic, mc, pc, kc);
                            for (int jr = 0; jr < nc; jr += NR)
                            {
                                int nr = Math.Min(NR, nc - jr);
                                float* bSliver = packB + jr * kc;
                                for (int ir = 0; ir < mc; ir += MR)
                                {
                                    int mr = Math.Min(MR, mc - ir);
                                    float* cTile = _c + (long)(ic + ir) * _ldc + jc + jr;
                                    MicroKernel(kc, packA + ir * kc, bSliver, cTile, _ldc, _alpha, mr, nr);
                                }
                            }
                        }
                    }
                }
            }
            finally
            {
                NativeMemory.AlignedFree(packA);
                NativeMemory.AlignedFree(packB);
            }
        }

        /// <summary>op(A)[i0..i0+mc, p0..p0+kc] → slivers of MR rows, each stored p-major: dst[s·MR·kc + p·MR + r].</summary>
        private void PackA(float* dst, int i0, int mc, int p0, int kc)
        {
            for (int s = 0; s < mc; s += MR)
            {
                int rows = Math.Min(MR, mc - s);
                float* d = dst + s * kc;
                if (_transA)
                {
                    // op(A)(i, p) = A[p, i]: each p reads MR consecutive floats.
                    for (int p = 0; p < kc; p++)
                    {
                        float* src = _a + (long)(p0 + p) * _lda + i0 + s;
                        int r = 0;
                        for (; r < rows; r++) d[p * MR + r] = src[r];
                        for (; r < MR; r++) d[p * MR + r] = 0f;
                    }
                }
                else
                {
                    for (int r = 0; r < MR; r++)
                    {
                        if (r < rows)
                        {
                            float* src = _a + (long)(i0 + s + r) * _lda + p0;
                            for (int p = 0; p < kc; p++) d[p * MR + r] = src[p];
                        }
                        else
                        {
                            for (int p = 0; p < kc; p++) d[p * MR + r] = 0f;
                        }
                    }
                }
            }
        }

        /// <summary>op(B)[p0..p0+kc, j0..j0+nc] → slivers of NR columns: dst[t·NR·kc + p·NR + c].</summary>
        private void PackB(float* dst, int p0, int kc, int j0, int nc)
        {
            for (int t = 0; t < nc; t += NR)
            {
                int cols = Math.Min(NR, nc - t);
                float* d = dst + t * kc;
                if (_transB)
                {
                    // op(B)(p, j) = B[j, p]: read each source row contiguously, scatter with stride NR.
                    for (int c = 0; c < NR; c++)
                    {
                        if (c < cols)
                        {
                            float* src = _b + (long)(j0 + t + c) * _ldb + p0;
                            for (int p = 0; p < kc; p++) d[p * NR + c] = src[p];
                        }
                        else
                        {
                            for (int p = 0; p < kc; p++) d[p * NR + c] = 0f;
                        }
                    }
                }
                else
                {
                    for (int p = 0; p < kc; p++)
                    {
                        float* src = _b + (long)(p0 + p) * _ldb + j0 + t;
                        var row = new Span<float>(d + p * NR, NR);
                        new ReadOnlySpan<float>(src, cols).CopyTo(row);
                        if (cols < NR) row[cols..].Clear();
                    }
                }
            }
        }
    }

    /// <summary>
    /// C[0..mr, 0..nr] += alpha · Apanel(MR×kc) · Bpanel(kc×NR). Full tiles store straight into C;
    /// edge tiles go through a stack buffer.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MicroKernel(int kc, float* a, float* b, float* c, int ldc, float alpha, int mr, int nr)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default,
            c20 = default, c21 = default, c30 = default, c31 = default,
            c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.LoadAligned(b), b1 = Vector512.LoadAligned(b + 16);
            Vector512<float> av = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(av, b0, c00); c01 = Vector512.FusedMultiplyAdd(av, b1, c01);
            av = Vector512.Create(a[1]);
            c10 = Vector512.FusedMultiplyAdd(av, b0, c10); c11 = Vector512.FusedMultiplyAdd(av, b1, c11);
            av = Vector512.Create(a[2]);
            c20 = Vector512.FusedMultiplyAdd(av, b0, c20); c21 = Vector512.FusedMultiplyAdd(av, b1, c21);
            av = Vector512.Create(a[3]);
            c30 = Vector512.FusedMultiplyAdd(av, b0, c30); c31 = Vector512.FusedMultiplyAdd(av, b1, c31);
            av = Vector512.Create(a[4]);
            c40 = Vector512.FusedMultiplyAdd(av, b0, c40); c41 = Vector512.FusedMultiplyAdd(av, b1, c41);
            av = Vector512.Create(a[5]);
            c50 = Vector512.FusedMultiplyAdd(av, b0, c50); c51 = Vector512.FusedMultiplyAdd(av, b1, c51);
            av = Vector512.Create(a[6]);
            c60 = Vector512.FusedMultiplyAdd(av, b0, c60); c61 = Vector512.FusedMultiplyAdd(av, b1, c61);
            av = Vector512.Create(a[7]);
            c70 = Vector512.FusedMultiplyAdd(av, b0, c70); c71 = Vector512.FusedMultiplyAdd(av, b1, c71);
            a += MR; b += NR;
        }

        // The epilogue lives in its own method: with it inline the JIT spilled every accumulator on every iteration.
        WriteTile(c, ldc, alpha, mr, nr, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void WriteTile(float* c, int ldc, float alpha, int mr, int nr,
        Vector512<float> c00, Vector512<float> c01, Vector512<float> c10, Vector512<float> c11,
        Vector512<float> c20, Vector512<float> c21, Vector512<float> c30, Vector512<float> c31,
        Vector512<float> c40, Vector512<float> c41, Vector512<float> c50, Vector512<float> c51,
        Vector512<float> c60, Vector512<float> c61, Vector512<float> c70, Vector512<float> c71)
    {
        bool full = mr == MR && nr == NR;
        float* tile = stackalloc float[MR * NR];
        float* dst = full ? c : tile;
        int ld = full ? ldc : NR;
        var al = Vector512.Create(alpha);
        Accumulate(dst, c00, c01, al, full); dst += ld;
        Accumulate(dst, c10, c11, al, full); dst += ld;
        Accumulate(dst, c20, c21, al, full); dst += ld;
        Accumulate(dst, c30, c31, al, full); dst += ld;
        Accumulate(dst, c40, c41, al, full); dst += ld;
        Accumulate(dst, c50, c51, al, full); dst += ld;
        Accumulate(dst, c60, c61, al, full); dst += ld;
        Accumulate(dst, c70, c71, al, full);
        if (full) return;
        for (int i = 0; i < mr; i++)
        {
            for (int j = 0; j < nr; j++)
                c[(long)i * ldc + j] += tile[i * NR + j];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Accumulate(float* row, Vector512<float> lo, Vector512<float> hi, Vector512<float> alpha, bool add)
    {
        if (add)
        {
            Vector512.FusedMultiplyAdd(lo, alpha, Vector512.Load(row)).Store(row);
            Vector512.FusedMultiplyAdd(hi, alpha, Vector512.Load(row + 16)).Store(row + 16);
        }
        else
        {
            (lo * alpha).Store(row);
            (hi * alpha).Store(row + 16);
        }
    }

    private static int RoundUp(int x, int multiple) => (x + multiple - 1) / multiple * multiple;
}
