using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Core.Generation;
using LoPAProxy.ModelServer;
using LoPAProxy.Proxy;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.SoftPrompts;
using LoPAProxy.Proxy.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- compare proxy [seconds]`: the latency the proxy adds over calling the reference
/// server directly (same requests, same run), split into pass-through, encoder, generator and serialisation, and
/// throughput with 1, 16 and 64 concurrent clients. Requests ask for one token so the model's own time stays small.
/// </summary>
public static class ProxyLoad
{
    private const string Key = "bench-key-0123456789abcdef", Instance = "The movie was great and the actors were wonderful.";

    public static async Task<int> Run(int seconds)
    {
        string repo = Repo(), model = Path.Combine(repo, "..", "shared", "models", "stories260K", "stories260K.bin");
        WebApplication server = ModelServerApp.Build(new ModelServerOptions
        {
            ModelPath = model, Port = 0,
            MaxQueued = 256
        });
        await server.StartAsync();
        string adapters = Path.Combine(Path.GetTempPath(), "lopa-bench-adapters");
        foreach (string enc in new[] { "minilm", "fm-mean" })
        {
            LopaAdapter.CreateRandom(new AdapterConfig
            {
                NumVirtualTokens = 10, TokenDim = 64, Rank = 4,
                HiddenSize = 256, Encoder = enc, EncoderDim = enc == "minilm" ? 384 : 64
            }, 1)
                .SaveDirectory(Path.Combine(adapters, "bench", enc));
        }

        string store = Path.Combine(Directory.CreateTempSubdirectory("lopa-bench-").FullName, "lopa.db");
        await FolderImport.ImportAsync(new StoreOptions { Path = store }, adapters, "1");
        var settings = new Dictionary<string, string?>
        {
            ["ReverseProxy:Routes:chat:ClusterId"] = "chat",
            ["ReverseProxy:Routes:chat:Match:Path"] = "/v1/chat/completions",
            ["ReverseProxy:Clusters:chat:Destinations:m:Address"] = server.Urls.First(),
            ["LoPA:Clusters:chat:Dialect"] = "vllm-chat", ["LoPA:Clusters:chat:Model"] = "stories260K",
            ["LoPA:Clusters:chat:HiddenSize"] = "64",
            ["LoPA:Encoders:0"] = "minilm", ["LoPA:Encoders:1"] = "fm-mean",
            ["LoPA:EncoderFiles:FoundationModel"] = model,
            ["LoPA:Store:Path"] = store, ["LoPA:Tenants:bench:ApiKeys:0"] = Key,
            ["Serilog:MinimumLevel"] = "Warning",
        };
        WebApplication proxy = ProxyApp.Build(new ConfigurationBuilder().AddInMemoryCollection(settings).Build(),
            "http://127.0.0.1:0");
        await proxy.StartAsync();
        string direct = server.Urls.First(), viaProxy = proxy.Urls.First();

        using var http = new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = 128,
            PooledConnectionLifetime = TimeSpan.FromMinutes(10)
        });
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        string Body(string model) => $"{{\"model\":\"{model}\",\"messages\":[{{\"role\":\"user\",\"content\":\"{Instance}\"}}],\"max_tokens\":1,\"temperature\":0}}";
        async Task<double> One(string baseUrl, string model)
        {
            var sw = Stopwatch.StartNew();
            using var r = await http.PostAsync(baseUrl + "/v1/chat/completions", new StringContent(Body(model),
                Encoding.UTF8, "application/json"));
            await r.Content.ReadAsByteArrayAsync();
            if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"{(int)r.StatusCode} from {baseUrl}");
            return sw.Elapsed.TotalMilliseconds;
        }
        async Task<(double P50, double P99)> Latency(string baseUrl, string model, int n = 300)
        {
            for (int i = 0; i < 30; i++) await One(baseUrl, model);
            var samples = new List<double>();
            for (int i = 0; i < n; i++) samples.Add(await One(baseUrl, model));
            samples.Sort();
            return (samples[n / 2], samples[(int)(n * 0.99)]);
        }
        // Interleave the configurations so drift hits all of them alike.
        var results = new Dictionary<string, List<(double, double)>>();
        foreach (int round in Enumerable.Range(0, 3))
        {
            foreach (var (name, url, modelName) in new[] { ("direct", direct, "stories260K"), ("proxy, no adapter",
                viaProxy, "stories260K"),
                         ("proxy + fm-mean adapter", viaProxy, "stories260K:fm-mean"), ("proxy + minilm adapter",
                             viaProxy, "stories260K:minilm") })
            {
                (results.TryGetValue(name, out var l) ? l : results[name] = new()).Add(await Latency(url, modelName));
            }
        }

        // The parts measured in-process on the same instance.
        var poolOptions = new LoPAOptions { EncoderFiles = new EncoderPaths { FoundationModel = model } };
        var pool = new EncoderPool(Microsoft.Extensions.Options.Options.Create(poolOptions));
        var use = new SoftPromptGenerator(LopaAdapter.Load(Path.Combine(adapters, "bench", "minilm")));
        IInstanceEncoder encoder = pool.Get("minilm");
        var x = new float[384];
        double encoderMs = Time(() => encoder.Encode(new[] { Instance }, x));
        var z = new float[640];
        var ws = use.NewWorkspace();
        double generatorMs = Time(() => use.Generate(x, 1, z, ws));
        double serialiseMs = Time(() =>
        {
            string b64 = SoftPromptService.Base64(z, 10, 64, LoPAProxy.Engine.Tensors.DType.F32);
            var body = JsonNode.Parse(Body("stories260K:minilm"))!.AsObject();
            body["messages"]![0]!["content"] = new JsonArray(new JsonObject
            {
                ["type"] = "prompt_embeds",
                ["data"] = b64
            }, new JsonObject { ["type"] = "text", ["text"] = Instance });
            System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(body);
        });

        Console.WriteLine("| path (1 token, sequential, 3 × 300 requests) | p50 ms | p99 ms |");
        Console.WriteLine("|---|---:|---:|");
        foreach (var (name, l) in results)
        {
            double p50 = l.Select(v => v.Item1).Average(), p99 = l.Select(v => v.Item2).Average();
            Console.WriteLine($"| {name} | {p50:F3} | {p99:F3} |");
        }

        double pass = results["proxy, no adapter"].Average(v => v.Item1) - results["direct"].Average(v => v.Item1);
        Console.WriteLine();
        Console.WriteLine("| added by the proxy | ms |");
        Console.WriteLine("|---|---:|");
        Console.WriteLine($"| pass-through (auth, YARP hop), p50 difference | {pass:F3} |");
        Console.WriteLine($"| minilm encoder (in-process, same sentence) | {encoderMs:F3} |");
        Console.WriteLine($"| generator (m = 10, d = 64, r = 4, H = 256) | {generatorMs:F3} |");
        Console.WriteLine($"| serialisation (torch.save + base64 + JSON rewrite) | {serialiseMs:F3} |");
        Console.WriteLine($"| everything with the minilm adapter, p50 difference | {results["proxy + minilm adapter"].Average(v => v.Item1) - results["direct"].Average(v => v.Item1):F3} |");

        Console.WriteLine();
        Console.WriteLine($"| concurrent clients ({seconds} s each, minilm adapter, 1 token) | requests/s | p50 ms | p99 ms | errors |");
        Console.WriteLine("|---:|---:|---:|---:|---:|");
        foreach (int clients in new[] { 1, 16, 64 })
        {
            var lat = new System.Collections.Concurrent.ConcurrentBag<double>();
            int errors = 0;
            var stop = DateTime.UtcNow.AddSeconds(seconds);
            var sw = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
            {
                while (DateTime.UtcNow < stop)
                {
                    try { lat.Add(await One(viaProxy, "stories260K:minilm")); }
                    catch (Exception) { Interlocked.Increment(ref errors); }
                }
            }));
            var sorted = lat.OrderBy(v => v).ToArray();
            Console.WriteLine($"| {clients} | {sorted.Length / sw.Elapsed.TotalSeconds:F0} | {sorted[sorted.Length / 2]:F1} | {sorted[(int)(sorted.Length * 0.99)]:F1} | {errors} |");
        }
        await proxy.StopAsync();
        await server.StopAsync();
        return 0;
    }

    private static double Time(Action a)
    {
        for (int i = 0; i < 20; i++) a();
        var sw = Stopwatch.StartNew();
        int n = 0;
        while (sw.ElapsedMilliseconds < 1500) { a(); n++; }
        return sw.Elapsed.TotalMilliseconds / n;
    }

    private static string Repo()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "LoPAProxy.sln"))) return d.FullName;
        throw new DirectoryNotFoundException("run from inside the repository");
    }
}
