using LLama.Native;

namespace LoPAProxy.ModelServer.Generation;

/// <summary>
/// Process-wide llama.cpp set-up, once: its log lines go nowhere below warnings (llama.cpp prints every tensor
/// it loads), and the CPU backend is the one this project ships (LLamaSharp.Backend.Cpu picks AVX-512, AVX2, AVX or
/// no-AVX builds by what the CPU has).
/// </summary>
public static class LlamaCppRuntime
{
    private static readonly object Gate = new();
    private static bool _done;

    public static void Initialise()
    {
        lock (Gate)
        {
            if (_done) return;
            NativeApi.llama_empty_call(); // loads the native library (some entry points do not trigger it)
            NativeLogConfig.llama_log_set(Log);
            _done = true;
        }
    }

    private static void Log(LLamaLogLevel level, string message)
    {
        if (level is LLamaLogLevel.Error or LLamaLogLevel.Warning) Console.Error.Write("llama.cpp: " + message);
    }
}
