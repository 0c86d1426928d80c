namespace LoPAProxy.Cli;

/// <summary>POSIX signals for stopping processes the CLI started.</summary>
internal static class Signals
{
    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    /// <summary>SIGTERM; a process that has already gone is not an error here.</summary>
    public static void Terminate(int pid) => _ = kill(pid, 15);
}
