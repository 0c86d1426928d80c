using System.Diagnostics;
using System.Text;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Store;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- compare inspection-memory [texts] [characters] [idle seconds] [calls]`: what one
/// soft-prompt inspection (POST /v1/adapters/{ref}/soft-prompt) of many long texts costs the proxy — wall time, RSS
/// before, right after and after an idle period — with a LoPA adapter on the MiniLM encoder (ONNX Runtime, 2
/// intra-op threads, spinning off: the proxy's defaults). The proxy runs as its own process (`lopa proxy`), so the
/// RSS is its alone. Issue 22 item 9 measured 28 s and ~500 MiB kept for 256 texts of 4,000 characters.
/// </summary>
public static class InspectionMemory
{
    public static async Task<int> Run(int texts, int characters, int idleSeconds, int repeats = 1)
    {
        string dir = Directory.CreateTempSubdirectory("lopa-inspection-").FullName;
        var config = new AdapterConfig
        {
            NumVirtualTokens = 10, TokenDim = 64, Rank = 4, HiddenSize = 256, Encoder = "minilm", EncoderDim = 384,
        };
        LopaAdapter.CreateRandom(config, 1).SaveDirectory(Path.Combine(dir, "adapters", "bench", "mini"));
        await FolderImport.ImportAsync(new StoreOptions { Path = Path.Combine(dir, "lopa.db") },
            Path.Combine(dir, "adapters"), "1");
        File.WriteAllText(Path.Combine(dir, "proxy.json"), Config(Path.Combine(dir, "lopa.db")));
        using ProxyProcess proxy = await ProxyProcess.StartAsync(Path.Combine(dir, "proxy.json"));
        await InspectAsync(proxy, Texts(2, 200, seed: 1)); // loads the encoder and the adapter
        await Task.Delay(2000);
        long before = proxy.Rss(), peak = before;
        string[] body = Texts(texts, characters, seed: 2);
        using var sampler = new Timer(_ => peak = Math.Max(peak, proxy.Rss()), null, 0, 100);
        var watch = Stopwatch.StartNew();
        int status = await InspectAsync(proxy, body); // 400 past the encoder-token budget (#22 item 9)
        double seconds = watch.Elapsed.TotalSeconds;
        long after = proxy.Rss();
        for (int i = 1; i < repeats; i++)
        {
            await InspectAsync(proxy, body);
            Console.WriteLine($"RSS after call {i + 1}: {proxy.Rss() / 1048576.0:F1} MiB");
        }
        await Task.Delay(idleSeconds * 1000);
        long later = proxy.Rss();
        Console.WriteLine($"| soft-prompt inspection, {texts} texts × {characters} characters (status {status}) | |");
        Console.WriteLine("|---|---:|");
        Console.WriteLine($"| wall time | {seconds:F2} s |");
        Console.WriteLine($"| RSS before | {before / 1048576.0:F1} MiB |");
        Console.WriteLine($"| RSS peak during the call | {peak / 1048576.0:F1} MiB |");
        Console.WriteLine($"| RSS right after | {after / 1048576.0:F1} MiB |");
        Console.WriteLine($"| RSS {idleSeconds} s after | {later / 1048576.0:F1} MiB |");
        Console.WriteLine($"| kept: {idleSeconds} s after − before | {(later - before) / 1048576.0:F1} MiB |");
        return status is 200 or 400 ? 0 : 1;
    }

    private static async Task<int> InspectAsync(ProxyProcess proxy, string[] texts)
    {
        string json = JsonSerializer.Serialize(new { text = texts[0], texts });
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using HttpResponseMessage r = await proxy.Http.PostAsync(proxy.Url + "/v1/adapters/mini/soft-prompt",
            content);
        await r.Content.ReadAsByteArrayAsync();
        return (int)r.StatusCode;
    }

    /// <summary>Texts of words drawn from a fixed list (seeded), each cut to the length asked for.</summary>
    private static string[] Texts(int count, int characters, int seed)
    {
        string[] words = ("the a movie was great terrible plot actors story film scene really quite boring " +
            "wonderful music ending long short funny sad character director camera light dark").Split(' ');
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var text = new StringBuilder();
            while (text.Length < characters) text.Append(words[rng.Next(words.Length)]).Append(' ');
            return text.ToString(0, characters);
        }).ToArray();
    }

    private static string Config(string store) => JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["ReverseProxy"] = new
        {
            Routes = new Dictionary<string, object>
            {
                ["chat"] = new { ClusterId = "chat", Match = new { Path = "/v1/chat/completions" } },
            },
            Clusters = new Dictionary<string, object>
            {
                ["chat"] = new { Destinations = new { m = new { Address = "http://127.0.0.1:9" } } },
            },
        },
        ["LoPA"] = new
        {
            Clusters = new Dictionary<string, object>
            {
                ["chat"] = new { Dialect = "vllm-chat", Model = "stories260K", HiddenSize = 64 },
            },
            Encoders = new[] { "minilm" },
            Store = new { Kind = "sqlite", Path = store },
        },
        ["Serilog"] = new { MinimumLevel = "Warning" },
    });
}
