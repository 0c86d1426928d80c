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
            LoadNativeLibrary();
            NativeLogConfig.llama_log_set(Log);
            _done = true;
        }
    }

    /// <summary>Loads llama.cpp (some entry points do not trigger it); a library that cannot load is one clear
    /// error, not a type-initialiser crash.</summary>
    private static void LoadNativeLibrary()
    {
        try
        {
            NativeApi.llama_empty_call();
        }
        catch (TypeInitializationException e)
        {
            throw new InvalidOperationException("llama.cpp's native library cannot be loaded: a library it needs is " +
                "missing (libgomp.so.1 — Debian's libgomp1 — or libstdc++; `ldd " +
                "runtimes/linux-x64/native/*/libllama.so` beside lopa names it)", e);
        }
    }

    private static void Log(LLamaLogLevel level, string message)
    {
        if (level is LLamaLogLevel.Error or LLamaLogLevel.Warning) Console.Error.Write("llama.cpp: " + message);
    }
}
