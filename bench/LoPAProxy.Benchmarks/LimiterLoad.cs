using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using LoPAProxy.Proxy;
using LoPAProxy.Proxy.Limits;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- compare limits [requests] [postgres connection string]`: the latency the limiter adds
/// per request. Three proxies in one process, in front of one instant backend (a fixed chat answer with usage):
/// limits off, every limit on with counters in this process, every limit on with counters in PostgreSQL. Their
/// requests are interleaved so drift hits all alike; reported: end-to-end p50/p99 and the difference to "off",
/// the admission alone (RateLimiter.AdmitAsync + SettleAsync) and requests/s with 16 clients (median of 5
/// alternating 2-second rounds).
/// </summary>
public static class LimiterLoad
{
    private const string Key = "bench-key-0123456789abcdef";
    private const string Body = """
        {"model":"m","max_tokens":1,
         "messages":[{"role":"user","content":"The movie was great and the actors were wonderful."}]}
        """;

    public static async Task<int> Run(int requests, string? postgres)
    {
        WebApplication backend = await InstantBackend.StartAsync();
        var configs = new List<(string Label, Dictionary<string, string?> Settings)>
        {
            ("off", new()),
            ("local counters", AllLimitsOn()),
        };
        if (postgres is not null)
        {
            Dictionary<string, string?> shared = AllLimitsOn();
            shared["LoPA:RateLimits:Counters"] = "postgres";
            shared["LoPA:RateLimits:ConnectionString"] = postgres;
            configs.Add(("PostgreSQL counters", shared));
        }
        var proxies = new List<WebApplication>();
        foreach (var (_, extra) in configs) proxies.Add(await StartProxyAsync(backend.Urls.First(), extra));
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 });
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);

        Console.WriteLine($"{Environment.ProcessorCount} cores; {requests} sequential requests per configuration, " +
            "interleaved; limits on = RPM, TPM, concurrency and a monthly budget all set (never reached)");
        Console.WriteLine();
        var samples = configs.Select(_ => new List<double>()).ToArray();
        for (int i = 0; i < 200; i++)
            foreach (WebApplication p in proxies) await OneAsync(http, p.Urls.First()); // warm-up
        for (int i = 0; i < requests; i++)
        {
            for (int k = 0; k < proxies.Count; k++)
            {
                int c = (i + k) % proxies.Count; // each configuration takes each place in the round alike
                samples[c].Add(await OneAsync(http, proxies[c].Urls.First()));
            }
        }

        var throughput = configs.Select(_ => new List<double>()).ToArray();
        for (int round = 0; round < 5; round++)
        {
            for (int k = 0; k < proxies.Count; k++)
            {
                int c = (round + k) % proxies.Count;
                throughput[c].Add(await ThroughputAsync(http, proxies[c].Urls.First(), 16, TimeSpan.FromSeconds(2)));
            }
        }

        double offP50 = Percentile(samples[0], 0.5), offP99 = Percentile(samples[0], 0.99);
        Console.WriteLine("| configuration | p50 ms | p99 ms | added p50 ms | added p99 ms | admission p50 ms | " +
            "admission p99 ms | req/s, 16 clients (median of 5) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        for (int c = 0; c < proxies.Count; c++)
        {
            double p50 = Percentile(samples[c], 0.5), p99 = Percentile(samples[c], 0.99);
            (double a50, double a99) = c == 0 ? (0, 0) : await AdmissionAsync(proxies[c], requests);
            double rps = Percentile(throughput[c], 0.5);
            Console.WriteLine($"| {configs[c].Label} | {p50:F3} | {p99:F3} | {p50 - offP50:+0.000;-0.000} | " +
                $"{p99 - offP99:+0.000;-0.000} | {a50:F3} | {a99:F3} | {rps:F0} |");
        }
        foreach (WebApplication p in proxies) await p.StopAsync();
        await backend.StopAsync();
        return 0;
    }

    private static Dictionary<string, string?> AllLimitsOn() => new()
    {
        ["LoPA:RateLimits:RequestsPerMinute"] = "1000000000", ["LoPA:RateLimits:TokensPerMinute"] = "1000000000000",
        ["LoPA:RateLimits:ConcurrentRequests"] = "100000", ["LoPA:RateLimits:TokenBudget"] = "1000000000000000",
    };

    private static async Task<WebApplication> StartProxyAsync(string backend, Dictionary<string, string?> extra)
    {
        var settings = new Dictionary<string, string?>
        {
            ["ReverseProxy:Routes:chat:ClusterId"] = "chat",
            ["ReverseProxy:Routes:chat:Match:Path"] = "/v1/chat/completions",
            ["ReverseProxy:Clusters:chat:Destinations:m:Address"] = backend,
            ["LoPA:Clusters:chat:Dialect"] = "vllm-chat", ["LoPA:Clusters:chat:Model"] = "m",
            ["LoPA:Clusters:chat:HiddenSize"] = "64",
            ["LoPA:Store:Path"] = Path.Combine(Directory.CreateTempSubdirectory("lopa-bench-").FullName, "lopa.db"),
            ["LoPA:Tenants:bench:ApiKeys:0"] = Key, ["LoPA:LogFormat"] = "text",
        };
        foreach (var (key, value) in extra) settings[key] = value;
        WebApplication proxy = ProxyApp.Build(new ConfigurationBuilder().AddInMemoryCollection(settings).Build(),
            "http://127.0.0.1:0");
        proxy.Services.GetRequiredService<LoPAProxy.Proxy.Hosting.ProxyLogLevel>().Switch.MinimumLevel =
            Serilog.Events.LogEventLevel.Warning;
        await proxy.StartAsync();
        return proxy;
    }

    private static async Task<double> OneAsync(HttpClient http, string baseUrl)
    {
        long started = Stopwatch.GetTimestamp();
        using HttpResponseMessage r = await http.PostAsync(baseUrl + "/v1/chat/completions",
            new StringContent(Body, Encoding.UTF8, "application/json"));
        await r.Content.ReadAsByteArrayAsync();
        if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"{(int)r.StatusCode} from {baseUrl}");
        return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }

    /// <summary>The limiter alone: one admission and its settlement, sequentially.</summary>
    private static async Task<(double P50, double P99)> AdmissionAsync(WebApplication proxy, int n)
    {
        RateLimiter limiter = proxy.Services.GetRequiredService<RateLimiter>();
        var samples = new List<double>();
        for (int i = 0; i < n; i++)
        {
            long started = Stopwatch.GetTimestamp();
            RateTicket ticket = (await limiter.AdmitAsync(new DefaultHttpContext(), "bench", 20))!;
            await limiter.SettleAsync(ticket, 13);
            samples.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        return (Percentile(samples, 0.5), Percentile(samples, 0.99));
    }

    private static async Task<double> ThroughputAsync(HttpClient http, string baseUrl, int clients, TimeSpan time)
    {
        long done = 0;
        var stop = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
        {
            while (stop.Elapsed < time)
            {
                await OneAsync(http, baseUrl);
                Interlocked.Increment(ref done);
            }
        }));
        return done / stop.Elapsed.TotalSeconds;
    }

    private static double Percentile(List<double> samples, double q)
    {
        double[] sorted = samples.Order().ToArray();
        return sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * q))];
    }
}
