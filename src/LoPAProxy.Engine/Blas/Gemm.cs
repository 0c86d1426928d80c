namespace LoPAProxy.Engine.Blas;

/// <summary>
/// The one GEMM this project keeps, for the soft-prompt heads (Linear → tanh → Linear on a few instances): the managed
/// SIMD kernel. Why not a library: Z's bytes must not depend on what a request was batched with, and a BLAS picks its
/// kernel by shape and thread count (OpenBLAS did, measured in docs/benchmarks.md); these matrix-vector shapes are also
/// where a BLAS call's overhead outweighs the work. The llama.cpp server, the ONNX encoders and the TorchSharp trainer
/// bring their own kernels; the OpenBLAS backend retired with the hand-written Llama.
/// </summary>
public static class Gemm
{
    public static ManagedGemm Managed { get; } = new();
}
