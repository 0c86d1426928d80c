using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace LoPAProxy.Cli.Tests.Containers;

/// <summary>Runs podman (and the container scripts) as child processes; says why containers cannot run here.</summary>
internal static class Podman
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string Output => Stdout + Stderr;
    }

    /// <summary>Null when podman can run a container here; otherwise the reason, for a skip.</summary>
    public static readonly Lazy<string?> Unavailable = new(WhyUnavailable);

    public static Result Run(params string[] args) => Exec("podman", args, null, 300);

    /// <summary>Runs <paramref name="file"/> with arguments and extra environment; kills it past the timeout.
    /// </summary>
    public static Result Exec(string file, IEnumerable<string> args, IDictionary<string, string>? environment,
        int timeoutSeconds, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? RepoRoot,
        };
        foreach (string a in args) psi.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) psi.Environment[name] = value;
        using Process process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeoutSeconds * 1000))
        {
            process.Kill(true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} ran over {timeoutSeconds} s");
        }
        process.WaitForExit();
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>A port free on 127.0.0.1 now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Polls <paramref name="url"/> until it answers 200; false after <paramref name="seconds"/>.</summary>
    public static async Task<bool> WaitFor200Async(string url, int seconds)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        DateTime end = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < end)
        {
            try
            {
                using HttpResponseMessage r = await client.GetAsync(url);
                if (r.StatusCode == HttpStatusCode.OK) return true;
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException)
            {
                // Not answering yet.
            }
            await Task.Delay(500);
        }
        return false;
    }

    public static string RepoRoot => LoPAProxy.Engine.Tests.Support.RepoFiles.Root;

    private static string? WhyUnavailable()
    {
        try
        {
            Result info = Exec("podman", ["info", "--format", "{{.Host.OCIRuntime.Name}}"], null, 60);
            return info.ExitCode == 0 ? null : $"podman cannot run here: {info.Stderr.Trim()}";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "podman is not installed (scripts/test.sh installs it as root: podman, buildah, mmdebstrap)";
        }
    }
}
