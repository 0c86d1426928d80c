using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// `lopa proxy` as a process of its own (built by `dotnet build -c Release`), so that its RSS (/proc VmRSS) is its
/// alone, with one tenant key given through the environment; killed on dispose.
/// </summary>
public sealed class ProxyProcess : IDisposable
{
    public const string Key = "bench-key-0123456789abcdef";
    private readonly Process _process;

    public string Url { get; }
    /// <summary>The management listener (/metrics, /readyz).</summary>
    public string ManagementUrl { get; }
    public HttpClient Http { get; }

    private ProxyProcess(Process process, string url, string managementUrl)
    {
        _process = process;
        Url = url;
        ManagementUrl = managementUrl;
        Http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 128 })
        {
            Timeout = TimeSpan.FromMinutes(10),
        };
        Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
    }

    /// <summary>Starts the proxy on a free loopback port with this configuration file; returns once it answers
    /// /healthz.</summary>
    public static async Task<ProxyProcess> StartAsync(string configFile)
    {
        string lopa = Path.Combine(RepoPaths.RepoDir(), "src", "LoPAProxy.Cli", "bin", "Release", "net10.0",
            "lopa.dll");
        if (!File.Exists(lopa)) throw new FileNotFoundException($"build first (dotnet build -c Release): {lopa}");
        int port = FreePort();
        int management = FreePort();
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
            UseShellExecute = false
        };
        foreach (string a in new[] { lopa, "proxy", "--config", configFile, "--urls", $"http://127.0.0.1:{port}" })
            psi.ArgumentList.Add(a);
        psi.Environment["LoPA__Tenants__bench__ApiKeys__0"] = Key;
        psi.Environment["LoPA__Management__Urls"] = $"http://127.0.0.1:{management}";
        Process process = Process.Start(psi)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var proxy = new ProxyProcess(process, $"http://127.0.0.1:{port}", $"http://127.0.0.1:{management}");
        await proxy.WaitUntilUpAsync();
        return proxy;
    }

    /// <summary>The proxy's resident set now, in bytes.</summary>
    public long Rss() => ProcessFigures.Status(_process.Id, "VmRSS:");

    /// <summary>Resident bytes backed by files (the mapped vocabulary among them; reclaimable by the kernel).</summary>
    public long RssFile() => ProcessFigures.Status(_process.Id, "RssFile:");

    /// <summary>CPU seconds the proxy has used, user and system, all threads.</summary>
    public double CpuSeconds() => ProcessFigures.CpuSeconds(_process.Id);

    /// <summary>Bytes the proxy's managed heap has allocated since it started (the runtime's own counter,
    /// dotnet_gc_heap_total_allocated_bytes on the management /metrics).</summary>
    public async Task<long> AllocatedBytesAsync() =>
        (long)await MetricSumAsync("dotnet_gc_heap_total_allocated_bytes_total");

    /// <summary>The sum over every series of one metric on the management /metrics (0 when it has none yet).
    /// </summary>
    public async Task<double> MetricSumAsync(string name)
    {
        string metrics = await Http.GetStringAsync(ManagementUrl + "/metrics");
        double sum = 0;
        foreach (string line in metrics.Split('\n'))
        {
            if (line.StartsWith(name + "{", StringComparison.Ordinal) || line.StartsWith(name + " ",
                StringComparison.Ordinal))
            {
                sum += double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }
        }
        return sum;
    }

    private async Task WaitUntilUpAsync()
    {
        for (int i = 0; i < 300; i++)
        {
            try
            {
                using HttpResponseMessage r = await Http.GetAsync(Url + "/healthz");
                if (r.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(100);
        }
        throw new TimeoutException("the proxy did not start");
    }

    public static int FreePort()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public void Dispose()
    {
        Http.Dispose();
        _process.Kill(true);
        _process.Dispose();
    }
}
