using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Proxy.Tests.Store;

/// <summary>
/// A PostgreSQL server of this test's own (Debian's binaries, the ones scripts/test.sh uses; a fresh data folder and
/// port on 127.0.0.1) that the test may stop and start again — the shared test server must stay up for the others.
/// </summary>
public sealed class PrivatePostgres : IAsyncDisposable
{
    private readonly string _bin, _data;
    public int Port { get; }
    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Username=lopa;Database=postgres;Timeout=3";

    private PrivatePostgres(string bin, string data, int port)
    {
        _bin = bin;
        _data = data;
        Port = port;
    }

    public static async Task<PrivatePostgres> StartAsync()
    {
        string bin = Directory.GetDirectories("/usr/lib/postgresql").Select(v => Path.Combine(v, "bin"))
            .OrderBy(p => p, StringComparer.Ordinal).Last();
        string data = Path.Combine(TempDir.Create(), "pg");
        Directory.CreateDirectory(data);
        if (Environment.UserName == "root") Run("chown", "-R", "postgres", Path.GetDirectoryName(data)!);
        var pg = new PrivatePostgres(bin, data, FreePort());
        pg.AsPostgres("initdb", "-D", data, "-A", "trust", "-U", "lopa");
        await pg.StartServerAsync();
        return pg;
    }

    /// <summary>pg_ctl start (waits until it accepts connections).</summary>
    public Task StartServerAsync()
    {
        AsPostgres("pg_ctl", "-D", _data, "-l", Path.Combine(_data, "log"), "-w", "-o",
            $"-p {Port} -k {_data} -c listen_addresses=127.0.0.1", "start");
        return Task.CompletedTask;
    }

    /// <summary>pg_ctl stop -m fast: open sessions are ended, new connections refused.</summary>
    public void Stop() => AsPostgres("pg_ctl", "-D", _data, "-m", "fast", "-w", "stop");

    private void AsPostgres(string tool, params string[] args)
    {
        string exe = Path.Combine(_bin, tool);
        if (Environment.UserName == "root")
            Run("runuser", new[] { "-u", "postgres", "--", exe }.Concat(args).ToArray());
        else Run(exe, args);
    }

    private static void Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using Process p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {output}");
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public ValueTask DisposeAsync()
    {
        try
        {
            Stop();
        }
        catch (InvalidOperationException)
        {
            // already stopped
        }
        Npgsql.NpgsqlConnection.ClearAllPools();
        return ValueTask.CompletedTask;
    }
}
