using System.Runtime.InteropServices;
using TorchSharp;

namespace LoPAProxy.Training;

/// <summary>
/// libtorch's process-wide settings, made explicit: the device, intra-op threads, OpenMP's waiting policy and MKL's
/// reproducibility mode.
/// - libtorch spin-waits by default (OMP_WAIT_POLICY=ACTIVE), which on shared cores costs 3× (DESIGN §4); the trainer
///   sets PASSIVE unless the environment says otherwise.
/// - MKL (libtorch's CPU BLAS) may pick kernels by the buffers' memory alignment, so the same step on the same values
///   can differ in the last bit between two runs (seen: a resumed run off by one ulp). MKL_CBWR=AUTO,STRICT keeps
///   the fastest code path with alignment-independent results, which resumable training needs (TrainerTests).
/// Both are read when the libraries load, so they are set in the process's native environment (.NET's
/// Environment.SetEnvironmentVariable does not reach getenv) before the first torch call.
/// </summary>
public static class TorchRuntime
{
    private static readonly object Gate = new();
    private static bool _configured;

    /// <summary>The wait policy and thread count in effect, for reports ("threads 2,
    /// OMP_WAIT_POLICY=PASSIVE").</summary>
    public static string Settings { get; private set; } = "";

    /// <summary>Sets the waiting policy (before libtorch loads) and the intra-op threads (0 = libtorch's
    /// default: one per core). Idempotent for the waiting policy; threads can be changed later.</summary>
    public static void Configure(int threads = 0)
    {
        lock (Gate)
        {
            if (!_configured)
            {
                string policy = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "PASSIVE";
                _ = setenv("OMP_WAIT_POLICY", policy, 1);
                _ = setenv("MKL_CBWR", Environment.GetEnvironmentVariable("MKL_CBWR") ?? "AUTO,STRICT", 1);
                _configured = true;
            }
            if (threads > 0) torch.set_num_threads(threads);
            string wait = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "PASSIVE";
            Settings = $"threads {torch.get_num_threads()}, OMP_WAIT_POLICY={wait}";
        }
    }

    /// <summary>"cpu", "cuda" or "cuda:N" → a torch device; a clear error where this libtorch has no CUDA.</summary>
    public static torch.Device Device(string name)
    {
        Configure();
        if (name == "cpu") return torch.CPU;
        if (name != "cuda" && !name.StartsWith("cuda:", StringComparison.Ordinal))
            throw new ArgumentException($"--device '{name}' is not cpu, cuda or cuda:N");
        if (!torch.cuda.is_available())
        {
            throw new InvalidOperationException("--device cuda: this build's libtorch has no CUDA (it references " +
                "libtorch-cpu-linux-x64). On a CUDA machine reference libtorch-cuda-12.8-linux-x64 instead " +
                "(docs/training.md, \"On a GPU\") — or train with --device cpu.");
        }

        return new torch.Device(name);
    }

    [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false,
        ThrowOnUnmappableChar = true)]
    private static extern int setenv(string name, string value, int overwrite);
}
