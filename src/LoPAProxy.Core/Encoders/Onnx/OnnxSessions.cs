using Microsoft.ML.OnnxRuntime;

namespace LoPAProxy.Core.Encoders.Onnx;

/// <summary>The CUDA execution provider was asked for and cannot run here; the message names what is missing.</summary>
public sealed class DeviceUnavailableException(string message, Exception inner) : InvalidOperationException(message,
    inner);

/// <summary>Creates ONNX Runtime sessions with the project's thread and device settings.</summary>
public static class OnnxSessions
{
    /// <summary>
    /// A session for <paramref name="modelPath"/>. CPU: sequential execution, the given intra-op threads, spinning off
    /// unless allowed. CUDA: the CUDA execution provider first (the CPU provider takes what it cannot run); if it
    /// cannot load, <see cref="DeviceUnavailableException"/> naming the missing library, or — with FallbackToCpu — a
    /// CPU session and the reason through <paramref name="warn"/>.
    /// </summary>
    public static (InferenceSession Session, string Device) Create(string modelPath, OnnxEncoderSettings settings,
        Action<string>? warn = null)
    {
        int? cuda = settings.CudaDevice;
        if (cuda is int device)
        {
            try
            {
                SessionOptions options = CpuOptions(settings);
                options.AppendExecutionProvider_CUDA(device);
                return (new InferenceSession(modelPath, options), $"cuda:{device}");
            }
            catch (OnnxRuntimeException e)
            {
                string reason = $"the CUDA execution provider cannot run here ({Reason(e)}); ONNX Runtime 1.31's CUDA " +
                    "provider needs the CUDA 13 libraries (libcublasLt.so.13, libcudart, libcurand) and cuDNN 9 " +
                    "on the library path";
                if (!settings.FallbackToCpu) throw new DeviceUnavailableException(reason, e);
                warn?.Invoke(reason + "; running on the CPU as configured (FallbackToCpu)");
            }
        }
        return (new InferenceSession(modelPath, CpuOptions(settings)), "cpu");
    }

    private static SessionOptions CpuOptions(OnnxEncoderSettings settings)
    {
        var options = new SessionOptions
        {
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = settings.EffectiveThreads,
            InterOpNumThreads = 1,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL,
        };
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", settings.AllowSpinning ? "1" : "0");
        options.AddSessionConfigEntry("session.inter_op.allow_spinning", settings.AllowSpinning ? "1" : "0");
        return options;
    }

    /// <summary>The loader's own words ("libcublasLt.so.13: cannot open shared object file"), when it gave
    /// them.</summary>
    /// <summary>
    /// Why the CUDA provider did not load, in the dynamic loader's own words ("libcublasLt.so.13: cannot open shared
    /// object file"): ORT's exception only says "failed to load", so the provider library is loaded once more here.
    /// </summary>
    private static string Reason(OnnxRuntimeException e)
    {
        string? provider = ProviderLibrary();
        if (provider is null) return $"{ProviderFile} is not installed beside ONNX Runtime";
        try
        {
            System.Runtime.InteropServices.NativeLibrary.Free(System.Runtime.InteropServices.NativeLibrary.Load(provider));
        }
        catch (DllNotFoundException missing)
        {
            // .NET puts dlerror()'s text on the message's last line.
            string last = missing.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Trim();
            return last.Replace(provider + ": ", "", StringComparison.Ordinal);
        }
        return e.Message.Trim();
    }

    private const string ProviderFile = "libonnxruntime_providers_cuda.so";

    private static string? ProviderLibrary()
    {
        string portable = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");
        foreach (string dir in new[] { AppContext.BaseDirectory, portable })
        {
            string path = Path.Combine(dir, ProviderFile);
            if (File.Exists(path)) return path;
        }
        return null;
    }

    /// <summary>ORT logs to stderr at warning level by default; the project reports failures itself.</summary>
    static OnnxSessions()
    {
        if (OrtEnv.IsCreated) return;
        var quiet = new EnvironmentCreationOptions { logLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
        OrtEnv.CreateInstanceWithOptions(ref quiet);
    }
}
