using System.Text;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.ModelServer;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Store;
using Microsoft.AspNetCore.Builder;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- compare proxy-memory [load seconds] [idle seconds]`: does the proxy's memory return after
/// load? The proxy runs as its own process (`lopa proxy`, built by `dotnet build`), so its RSS (/proc VmRSS) is its
/// alone; the reference server and the load generator run here. After a 10 s warm-up at 16 clients, load: 64 clients,
/// fm-mean adapter on chat and
/// completions, and one request in 50 an over-context 1 MB prompt (refused by the budget). Prints RSS before, at
/// the peak, at the end of the load and after the idle period, and the ratio after/before (issue 10's goal: ≤ 1.25).
/// </summary>
public static class ProxyMemory
{
    public static async Task<int> Run(int loadSeconds, int idleSeconds)
    {
        string repo = RepoPaths.RepoDir();
        string model = Path.Combine(repo, "..", "shared", "models", "stories260K", "stories260K.bin");
        WebApplication server = ModelServerApp.Build(new ModelServerOptions
        {
            ModelPath = model, Port = 0,
            MaxQueued = 512
        });
        await server.StartAsync();
        string dir = Directory.CreateTempSubdirectory("lopa-memory-").FullName;
        var adapterConfig = new AdapterConfig
        {
            NumVirtualTokens = 10, TokenDim = 64, Rank = 4, HiddenSize = 256, Encoder = "fm-mean", EncoderDim = 64,
        };
        LopaAdapter.CreateRandom(adapterConfig, 1).SaveDirectory(Path.Combine(dir, "adapters", "bench", "story"));
        await FolderImport.ImportAsync(new StoreOptions { Path = Path.Combine(dir, "lopa.db") },
            Path.Combine(dir, "adapters"), "1");
        File.WriteAllText(Path.Combine(dir, "proxy.json"), ProxyConfig(server.Urls.First(), Path.GetFullPath(model)));
        using ProxyProcess proxy = await ProxyProcess.StartAsync(Path.Combine(dir, "proxy.json"));
        try
        {
            string url = proxy.Url;
            HttpClient http = proxy.Http;
            // Warm: JIT tiers, thread pool and connection pools reach their working size (16 clients, 10 s).
            var warm = DateTime.UtcNow.AddSeconds(10);
            await Task.WhenAll(Enumerable.Range(0, 16).Select(async client =>
            {
                for (int i = client; DateTime.UtcNow < warm; i += 16) await SendAsync(http, url, i);
            }));
            await Task.Delay(5000);
            long before = proxy.Rss(), peak = before;
            var stop = DateTime.UtcNow.AddSeconds(loadSeconds);
            int requests = 0, errors = 0;
            using var sampler = new Timer(_ => peak = Math.Max(peak, proxy.Rss()), null, 0, 200);
            await Task.WhenAll(Enumerable.Range(0, 64).Select(async client =>
            {
                for (int i = client; DateTime.UtcNow < stop; i += 64)
                {
                    if (!await SendAsync(http, url, i)) Interlocked.Increment(ref errors);
                    Interlocked.Increment(ref requests);
                }
            }));
            long atEnd = proxy.Rss();
            await Task.Delay(idleSeconds * 1000);
            long after = proxy.Rss();
            Console.WriteLine($"| proxy RSS (64 clients × {loadSeconds} s, {requests} requests, {errors} unexpected) | MiB |");
            Console.WriteLine("|---|---:|");
            Console.WriteLine($"| before (warm) | {before / 1048576.0:F1} |");
            Console.WriteLine($"| peak during load | {peak / 1048576.0:F1} |");
            Console.WriteLine($"| end of load | {atEnd / 1048576.0:F1} |");
            Console.WriteLine($"| {idleSeconds} s after | {after / 1048576.0:F1} |");
            Console.WriteLine($"| after / before | {(double)after / before:F2} |");
            return (double)after / before <= 1.25 ? 0 : 1;
        }
        finally
        {
            await server.StopAsync();
        }
    }

    /// <summary>Chat and completions with the adapter; every 50th an over-context 1 MB prompt. False when
    /// unexpected.</summary>
    private static async Task<bool> SendAsync(HttpClient http, string url, int i)
    {
        bool hostile = i % 50 == 49;
        object body = hostile
            ? new { model = "stories260K:story", prompt = new string('a', 1 << 20), max_tokens = 1 }
            : i % 2 == 0
                ? new
                {
                    model = "stories260K:story", messages = new[] { new { role = "user",
                    content = $"Tom had a red kite {i}" } }, max_tokens = 1
                }
                : new { model = "stories260K:story", prompt = $"Once upon a time {i}", max_tokens = 1 };
        string path = hostile || i % 2 == 1 ? "/v1/completions" : "/v1/chat/completions";
        try
        {
            using var content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
            using HttpResponseMessage r = await http.PostAsync(url + path, content);
            await r.Content.ReadAsByteArrayAsync();
            return hostile ? (int)r.StatusCode == 400 : r.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    private static string ProxyConfig(string backend, string model) => JsonSerializer.Serialize(new Dictionary<string,
        object>
    {
        ["ReverseProxy"] = new
        {
            Routes = new Dictionary<string, object>
            {
                ["chat"] = new { ClusterId = "chat", Match = new { Path = "/v1/chat/completions" } },
                ["completions"] = new { ClusterId = "completions", Match = new { Path = "/v1/completions" } },
            },
            Clusters = new Dictionary<string, object>
            {
                ["chat"] = new { Destinations = new { m = new { Address = backend } } },
                ["completions"] = new { Destinations = new { m = new { Address = backend } } },
            },
        },
        ["LoPA"] = new
        {
            Clusters = new Dictionary<string, object>
            {
                ["chat"] = new { Dialect = "vllm-chat", Model = "stories260K", HiddenSize = 64 },
                ["completions"] = new
                {
                    Dialect = "vllm-completions", Model = "stories260K", HiddenSize = 64,
                    ModelPath = model
                },
            },
            Encoders = new[] { "fm-mean" },
            EncoderFiles = new { FoundationModel = model },
            Store = new { Kind = "sqlite", Path = "lopa.db" },
        },
        ["Serilog"] = new { MinimumLevel = "Warning" },
    });
}
