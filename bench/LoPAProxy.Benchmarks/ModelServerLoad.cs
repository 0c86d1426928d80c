using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LoPAProxy.ModelServer;
using Microsoft.AspNetCore.Builder;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- compare model-server [model] [rounds]`: the reference model server over HTTP on
/// loopback, in process: decode tokens/s of one stream and of 8 concurrent streams (greedy, 200 new tokens each,
/// streamed; tokens/s counts from the first token to the last), time to first token for a 256-token prompt
/// (max_tokens 1), and the process's resident memory with 8 streams open over the idle server. The model
/// defaults to stories260K from ../shared. The server's thread settings are printed with the figures.
/// </summary>
public static class ModelServerLoad
{
    private const int NewTokens = 200, Streams = 8, LongPrompt = 256;

    public static async Task<int> Run(string? model, int rounds)
    {
        model ??= Path.Combine(RepoPaths.RepoDir(), "..", "shared", "models", "stories260K", "stories260K.bin");
        var options = new ModelServerOptions { ModelPath = model, Port = 0, MaxConcurrent = Streams };
        WebApplication server = ModelServerApp.Build(options);
        await server.StartAsync();
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 })
        {
            BaseAddress = new Uri(server.Urls.First()), Timeout = TimeSpan.FromMinutes(5),
        };
        Console.WriteLine($"model {Path.GetFileName(model)}; server: {ModelServerApp.Describe(server)}; " +
            $"{Environment.ProcessorCount} cores");
        await Stream(http, "Once upon a time", 8);
        long idle = CurrentRss();
        var single = new List<double>();
        var eight = new List<double>();
        var firstToken = new List<double>();
        long busy = 0;
        for (int round = 0; round < rounds; round++)
        {
            single.Add((await Stream(http, "Once upon a time", NewTokens)).TokensPerSecond);
            var tasks = Enumerable.Range(0, Streams).Select(i => Stream(http, $"Once upon a time {i}", NewTokens))
                .ToList();
            var sw = Stopwatch.StartNew();
            using (var sampler = new RssSampler()) { await Task.WhenAll(tasks); busy = Math.Max(busy, sampler.Peak); }
            int total = tasks.Sum(t => t.Result.Tokens);
            eight.Add(total / sw.Elapsed.TotalSeconds);
            string longPrompt = string.Join(",", Enumerable.Range(0, LongPrompt).Select(i => 100 + i % 300));
            firstToken.Add((await Stream(http, null, 1, $"[[{longPrompt}]]")).FirstTokenMs);
        }
        Console.WriteLine($"decode, 1 stream:   {Median(single),8:F1} tokens/s (median of {rounds})");
        Console.WriteLine($"decode, {Streams} streams:  {Median(eight),8:F1} tokens/s in total");
        Console.WriteLine($"first token, {LongPrompt}-token prompt: {Median(firstToken),8:F2} ms");
        long added = busy - idle;
        Console.WriteLine($"resident memory: idle {idle >> 20} MiB; with {Streams} streams +{added >> 20} MiB " +
            $"({added / Streams >> 10} KiB per stream)");
        await server.StopAsync();
        return 0;
    }

    private readonly record struct StreamResult(int Tokens, double FirstTokenMs, double TokensPerSecond);

    /// <summary>One streamed greedy completion; counts chunks with text as tokens (one per token here).</summary>
    private static async Task<StreamResult> Stream(HttpClient http, string? text, int maxTokens, string? ids = null)
    {
        string prompt = ids ?? JsonSerializer.Serialize(text);
        string body = $"{{\"prompt\":{prompt},\"max_tokens\":{maxTokens},\"temperature\":0,\"stream\":true," +
            "\"ignore_eos\":true}";
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        var sw = Stopwatch.StartNew();
        using HttpResponseMessage response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (!response.IsSuccessStatusCode)
        {
            string error = await response.Content.ReadAsStringAsync();
            throw new InvalidOperationException($"{(int)response.StatusCode}: {error}");
        }
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        int tokens = 0;
        double first = 0;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: {", StringComparison.Ordinal) || !line.Contains("\"text\":\"",
                StringComparison.Ordinal)
                || line.Contains("\"text\":\"\"", StringComparison.Ordinal))
            {
                continue;
            }

            if (tokens++ == 0) first = sw.Elapsed.TotalMilliseconds;
        }
        double decodeSeconds = (sw.Elapsed.TotalMilliseconds - first) / 1000;
        double rate = tokens > 1 ? (tokens - 1) / Math.Max(decodeSeconds, 1e-9) : 0;
        return new StreamResult(tokens, first, rate);
    }

    private static double Median(List<double> xs) => xs.Order().ElementAt(xs.Count / 2);

    private static long CurrentRss()
    {
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        return process.WorkingSet64;
    }

    /// <summary>Samples the resident set every 20 ms while it lives; Peak is the largest sample.</summary>
    private sealed class RssSampler : IDisposable
    {
        private readonly Timer _timer;
        private long _peak;

        public RssSampler()
        {
            _timer = new Timer(_ => Interlocked.Exchange(ref _peak, Math.Max(Interlocked.Read(ref _peak),
                CurrentRss())),
                null, 0, 20);
        }

        public long Peak => Interlocked.Read(ref _peak);

        public void Dispose() => _timer.Dispose();
    }
}
