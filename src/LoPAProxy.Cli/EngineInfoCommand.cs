using System.CommandLine;
using System.Runtime.Intrinsics;
using LoPAProxy.Engine.Blas;

namespace LoPAProxy.Cli;

/// <summary>`lopa engine-info`: which GEMM backend this machine uses and why.</summary>
internal static class EngineInfoCommand
{
    public static Command Create()
    {
        var command = new Command("engine-info", "Show the tensor engine's GEMM backend and SIMD support");
        command.SetAction(_ =>
        {
            GemmBackend gemm = Gemm.Default;
            Console.WriteLine($"gemm backend: {gemm.Name}");
            if (gemm is OpenBlasGemm blas) Console.WriteLine($"openblas: {blas.LibraryPath} ({blas.Config.Trim()}), {blas.Threads} threads");
            else Console.WriteLine($"fallback reason: {Gemm.FallbackReason}");
            Console.WriteLine($"simd: Vector512 {(Vector512.IsHardwareAccelerated ? "hardware" : "software")}, Vector256 {(Vector256.IsHardwareAccelerated ? "hardware" : "software")}");
            Console.WriteLine($"processors: {Environment.ProcessorCount}");
            return 0;
        });
        return command;
    }
}
