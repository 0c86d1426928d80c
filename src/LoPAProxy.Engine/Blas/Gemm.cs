namespace LoPAProxy.Engine.Blas;

/// <summary>
/// Chooses the process-wide GEMM backend: OpenBLAS when it loads (with matrix-vector shapes routed to the
/// managed backend, which is faster there), else the managed SIMD backend.
/// LOPA_GEMM=managed|openblas forces one alone (openblas fails loudly when missing).
/// </summary>
public static class Gemm
{
    private static GemmBackend? _default;
    private static readonly object Gate = new();

    public static ManagedGemm Managed { get; } = new();

    /// <summary>Why OpenBLAS was not chosen, or empty.</summary>
    public static string FallbackReason { get; private set; } = "";

    public static GemmBackend Default
    {
        get
        {
            if (_default != null) return _default;
            lock (Gate) return _default ??= Choose();
        }
        set => _default = value;
    }

    private static GemmBackend Choose()
    {
        string? wanted = Environment.GetEnvironmentVariable("LOPA_GEMM")?.Trim().ToLowerInvariant();
        if (wanted == "managed") { FallbackReason = "LOPA_GEMM=managed"; return Managed; }
        OpenBlasGemm? blas = OpenBlasGemm.TryLoad(out string reason);
        if (blas != null) return wanted == "openblas" ? blas : new ShapeRoutedGemm(blas, Managed);
        if (wanted == "openblas") throw new InvalidOperationException(reason);
        FallbackReason = reason;
        return Managed;
    }
}
