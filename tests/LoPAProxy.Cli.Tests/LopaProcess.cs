using System.Diagnostics;
using System.Runtime.InteropServices;

namespace LoPAProxy.Cli.Tests;

/// <summary>Runs the real `lopa` program (lopa.dll beside the tests) as a child process.</summary>
internal sealed class LopaProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _stdout = new();
    private readonly List<string> _stderr = new();
    private readonly object _gate = new();

    public LopaProcess(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "lopa.dll"));
        foreach (string a in args) psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) => { if (e.Data != null) lock (_gate) _stdout.Add(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (_gate) _stderr.Add(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Stdout { get { lock (_gate) return string.Join("\n", _stdout); } }
    public string Stderr { get { lock (_gate) return string.Join("\n", _stderr); } }
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    public int WaitForExit(int seconds = 60)
    {
        if (!_process.WaitForExit(seconds * 1000)) { _process.Kill(true); throw new TimeoutException($"lopa did not exit in {seconds} s:\n{Stdout}\n{Stderr}"); }
        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>Waits for a stdout line that matches.</summary>
    public string WaitForLine(Func<string, bool> match, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            lock (_gate) { string? line = _stdout.FirstOrDefault(match); if (line != null) return line; }
            if (_process.HasExited) break;
            Thread.Sleep(50);
        }
        throw new TimeoutException($"no matching line from lopa:\n{Stdout}\n{Stderr}");
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    /// <summary>SIGTERM, as a process manager or Ctrl-C would stop it.</summary>
    public void Terminate() => _ = kill(_process.Id, 15);

    /// <summary>SIGKILL: no shutdown code runs (a crash, an OOM kill).</summary>
    public void Kill9()
    {
        _ = kill(_process.Id, 9);
        _process.WaitForExit(10_000);
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(true);
        _process.Dispose();
    }
}
