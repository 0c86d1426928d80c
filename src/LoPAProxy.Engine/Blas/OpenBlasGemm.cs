using System.Runtime.InteropServices;

namespace LoPAProxy.Engine.Blas;

/// <summary>
/// GEMM through OpenBLAS's cblas_sgemm, loaded at run time from the Debian library
/// (libopenblas0-pthread) or the path in LOPA_OPENBLAS. Called through an unmanaged
/// function pointer: no marshalling, no delegate.
/// </summary>
public sealed unsafe class OpenBlasGemm : GemmBackend
{
    private const int RowMajor = 101, NoTrans = 111, Trans = 112;

    private static readonly string[] Candidates =
    {
        "libopenblas.so.0",
        "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
        "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
        "libopenblas.so",
        "libopenblas.dylib",
        "libopenblas.dll",
    };

    private readonly delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> _sgemm;

    public string LibraryPath { get; }
    public string Config { get; }
    public override string Name => "openblas";

    private OpenBlasGemm(string path, nint handle)
    {
        LibraryPath = path;
        _sgemm = (delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)
            NativeLibrary.GetExport(handle, "cblas_sgemm");
        Config = NativeLibrary.TryGetExport(handle, "openblas_get_config", out nint cfg)
            ? Marshal.PtrToStringAnsi(((delegate* unmanaged<nint>)cfg)()) ?? "" : "";
        if (NativeLibrary.TryGetExport(handle, "openblas_get_num_threads", out nint nt))
            Threads = ((delegate* unmanaged<int>)nt)();
        if (NativeLibrary.TryGetExport(handle, "openblas_set_num_threads", out nint st))
            _setThreads = (delegate* unmanaged<int, void>)st;
    }

    private readonly delegate* unmanaged<int, void> _setThreads;

    /// <summary>Threads OpenBLAS uses (its own pool, sized by OPENBLAS_NUM_THREADS or the core count).</summary>
    public int Threads { get; private set; }

    public void SetThreads(int threads)
    {
        if (_setThreads == null) return;
        _setThreads(threads);
        Threads = threads;
    }

    /// <summary>Loads OpenBLAS, or returns null with the reason when it is not installed.</summary>
    public static OpenBlasGemm? TryLoad(out string reason)
    {
        string? env = Environment.GetEnvironmentVariable("LOPA_OPENBLAS");
        IEnumerable<string> paths = string.IsNullOrEmpty(env) ? Candidates : new[] { env };
        foreach (string path in paths)
        {
            if (!NativeLibrary.TryLoad(path, out nint handle)) continue;
            if (!NativeLibrary.TryGetExport(handle, "cblas_sgemm", out _)) continue;
            reason = "";
            return new OpenBlasGemm(path, handle);
        }
        reason = "OpenBLAS not found (tried " + string.Join(", ", paths) + "); install Debian's libopenblas0-pthread or set LOPA_OPENBLAS";
        return null;
    }

    protected override void Compute(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
        => _sgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
