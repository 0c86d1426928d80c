using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.ModelServer;
using LoPAProxy.Proxy;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.SoftPrompts;
using LoPAProxy.Proxy.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- compare batching [seconds] [wait ms] [clients|-] [model|instant]`: proxy
/// throughput with a MiniLM adapter at 1, 16 and 64 concurrent clients, micro-batching off (Encoding:MaxBatch 1)
/// against on (32, the given wait), same run. Every request's instance text is new (the instance cache is off too),
/// so each one costs an encoder pass. Backend (reference server or instant stand-in), proxies and load generator
/// share this process; ORT: 2 intra-op threads, spinning off; llama.cpp: 1 thread (its threads poll for work).
/// </summary>
public static class BatchingLoad
{
    private const string Key = "bench-key-0123456789abcdef";

    /// <param name="backend">"model": the reference server (stories260K on llama.cpp, 1 token per request);
    /// "instant": <see cref="InstantBackend"/>, so the proxy and its encoder are all that is measured.</param>
    public static async Task<int> Run(int seconds, double maxWaitMs = 2, int[]? clientCounts = null,
        string backend = "model")
    {
        string model = Path.Combine(RepoPaths.RepoDir(), "..", "shared", "models", "stories260K",
            "stories260K.bin");
        WebApplication server;
        if (backend == "instant")
        {
            server = await InstantBackend.StartAsync();
        }
        else
        {
            // llama.cpp's threads poll for work: given both cores they take CPU from the encoder and the proxy
            // sharing this machine, so the model server gets one thread (a deployment runs it elsewhere).
            server = ModelServerApp.Build(new ModelServerOptions
            {
                ModelPath = model, Port = 0, MaxQueued = 1024,
                Threads = 1
            });
            await server.StartAsync();
        }
        string described = backend == "instant" ? "instant stand-in" : "stories260K, llama.cpp 1 thread";
        Console.WriteLine($"backend: {described}");
        string adapters = Directory.CreateTempSubdirectory("lopa-batching-").FullName;
        var config = new AdapterConfig
        {
            NumVirtualTokens = 10, TokenDim = 64, Rank = 4, HiddenSize = 256,
            Encoder = "minilm", EncoderDim = 384
        };
        LopaAdapter.CreateRandom(config, 1).SaveDirectory(Path.Combine(adapters, "bench", "mini"));
        string store = Path.Combine(adapters, "lopa.db");
        await FolderImport.ImportAsync(new StoreOptions { Path = store }, adapters, "1");
        Console.WriteLine("| clients | batching | requests/s | p50 ms | p99 ms | errors | mean batch |");
        Console.WriteLine("|---:|---|---:|---:|---:|---:|---:|");
        foreach (int clients in clientCounts ?? new[] { 1, 16, 64 })
        {
            foreach (bool batching in new[] { false, true })
            {
                WebApplication proxy = ProxyApp.Build(Settings(server.Urls.First(), model, store, batching,
                    maxWaitMs), "http://127.0.0.1:0");
                await proxy.StartAsync();
                var (rps, p50, p99, errors) = await LoadAsync(proxy.Urls.First(), clients, seconds);
                var stats = proxy.Services.GetRequiredService<InstanceVectors>().BatchStatistics.GetValueOrDefault("minilm");
                string mean = stats.Batches > 0 ? $"{(double)stats.Instances / stats.Batches:F1}" : "1.0";
                Console.WriteLine($"| {clients} | {(batching ? $"on (32, {maxWaitMs} ms)" : "off")} | {rps:F0} | {p50:F1} | {p99:F1} | {errors} | {mean} |");
                await proxy.StopAsync();
                await proxy.DisposeAsync();
            }
        }
        await server.StopAsync();
        return 0;
    }

    private static IConfiguration Settings(string backend, string model, string store,
        bool batching, double maxWaitMs) =>
        new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ReverseProxy:Routes:chat:ClusterId"] = "chat",
            ["ReverseProxy:Routes:chat:Match:Path"] = "/v1/chat/completions",
            ["ReverseProxy:Clusters:chat:Destinations:m:Address"] = backend,
            ["LoPA:Clusters:chat:Dialect"] = "vllm-chat", ["LoPA:Clusters:chat:Model"] = "stories260K",
            ["LoPA:Clusters:chat:HiddenSize"] = "64",
            ["LoPA:Encoders:0"] = "minilm", ["LoPA:OnnxEncoders:minilm:Threads"] = "2",
            ["LoPA:Store:Path"] = store, ["LoPA:Tenants:bench:ApiKeys:0"] = Key,
            ["Serilog:MinimumLevel"] = "Warning",
            ["LoPA:Encoding:MaxBatch"] = batching
                ? "32" : "1", ["LoPA:Encoding:MaxWaitMs"] = maxWaitMs.ToString(System.Globalization.CultureInfo.InvariantCulture), ["LoPA:Encoding:CacheMiB"] = "0",
        }).Build();

    private static async Task<(double Rps, double P50, double P99, int Errors)> LoadAsync(string url, int clients,
        int seconds)
    {
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 128 });
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        int counter = 0, errors = 0;
        async Task<double> One()
        {
            int n = Interlocked.Increment(ref counter);
            string body = JsonSerializer.Serialize(new
            {
                model = "stories260K:mini", max_tokens = 1, temperature = 0,
                messages = new[] { new { role = "user",
                    content = $"Review {n}: the film was surprisingly good and my friends loved it." } },
            });
            var sw = Stopwatch.StartNew();
            using HttpResponseMessage r = await http.PostAsync(url + "/v1/chat/completions", new StringContent(body,
                Encoding.UTF8, "application/json"));
            await r.Content.ReadAsByteArrayAsync();
            if (!r.IsSuccessStatusCode) Interlocked.Increment(ref errors);
            return sw.Elapsed.TotalMilliseconds;
        }
        for (int i = 0; i < 20; i++) await One();
        var latencies = new ConcurrentBag<double>();
        DateTime stop = DateTime.UtcNow.AddSeconds(seconds);
        var total = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
        {
            while (DateTime.UtcNow < stop) latencies.Add(await One());
        }));
        double[] sorted = latencies.OrderBy(v => v).ToArray();
        return (sorted.Length / total.Elapsed.TotalSeconds, sorted[sorted.Length / 2],
            sorted[(int)(sorted.Length * 0.99)], errors);
    }
}
