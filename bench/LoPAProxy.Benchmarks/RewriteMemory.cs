using System.Text.Json;
using System.Text.Json.Nodes;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Generation;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Dialects;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Models;
using LoPAProxy.Proxy.Requests;
using LoPAProxy.Proxy.SoftPrompts;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- compare rewrite-memory [stories|llama2|llama3]`: bytes allocated per embedding value
/// when the full-sequence dialects rewrite a request (measure, rewrite, serialise the body as forwarded), for the
/// per-request memory bound in docs/proxy.md, beside the bytes that go on the wire per value, and the time each
/// step takes on one thread (the profile behind `compare realistic`'s CPU figures). stories: stories260K
/// (d = 64), 16 prompts of ~250 tokens; llama2/llama3: <see cref="RealisticModel"/> (d = 4,096), one prompt of 2,048
/// tokens. fm-mean adapter, m = 10; all threads' allocations counted.
/// </summary>
public static class RewriteMemory
{
    /// <summary>Rounds per dialect, the last one reported: by then the JIT has compiled the hot paths at full
    /// optimisation.</summary>
    private const int Rounds = 40;

    public static int Run(string variant)
    {
        bool stories = variant == "stories";
        string model = stories
            ? Path.Combine(RepoPaths.RepoDir(), "..", "shared", "models", "stories260K", "stories260K.bin")
            : RealisticModel.PathOf(variant);
        int dim = stories ? 64 : RealisticModel.Dim;
        // Nothing ends these requests, so their rewrite reservations are never given back: an unbounded budget.
        var options = Options.Create(new LoPAOptions
        {
            EncoderFiles = new EncoderPaths { FoundationModel = model },
            Limits = new LimitOptions { MaxRewriteBytesInFlight = long.MaxValue / 2 },
        });
        var budget = new PromptBudget(new FoundationModels(), new RewriteBudget(options), options);
        var pool = new EncoderPool(options);
        var softPrompts = new SoftPromptService(pool, new InstanceVectors(options));
        var dialects = new Dictionary<string, IBackendDialect>
        {
            ["vllm-completions"] = new VllmCompletionsDialect(softPrompts, budget),
            ["sglang"] = new SglangDialect(softPrompts, budget),
        };
        var config = new AdapterConfig
        {
            NumVirtualTokens = 10, TokenDim = dim, Rank = 4, HiddenSize = 256,
            Encoder = "fm-mean", EncoderDim = dim
        };
        var generator = new SoftPromptGenerator(LopaAdapter.CreateRandom(config, 1));
        string prompt = stories
            ? string.Join(" ", Enumerable.Repeat("Tom had a red kite and Lily saw a big cat.", 25))
            : RealisticModel.Prompt(Core.FoundationModels.FoundationModelVocabulary.Load(model), 2048).Text;
        int count = stories ? 16 : 1;
        Console.WriteLine("| dialect | embedding values | bytes allocated | bytes per value | wire bytes per value | " +
            "measure ms | encoder + generator ms | rewrite ms | body sent ms |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        var copy = new byte[81920]; // YARP copies a request body through a pooled buffer of this size
        foreach (var (dialect, rewriter) in dialects)
        {
            var backend = new BackendOptions
            {
                Dialect = dialect, Model = "m", HiddenSize = dim,
                ModelPath = model, WireDType = WireDType.Bf16,
            };
            for (int round = 0; round < Rounds; round++)
            {
                var body = new JsonObject
                {
                    ["model"] = "m:x",
                    ["prompt"] = new JsonArray(Enumerable.Range(0, count)
                        .Select(i => (JsonNode?)$"{round}.{i} {prompt}").ToArray()),
                };
                long before = GC.GetTotalAllocatedBytes(precise: true);
                var watch = System.Diagnostics.Stopwatch.StartNew();
                var prompts = budget.MeasureCompletions(body, backend, generator.Rows);
                double measureMs = watch.Elapsed.TotalMilliseconds;
                var timings = new SoftPromptTimings();
                var request = new DialectRequest(new Microsoft.AspNetCore.Http.DefaultHttpContext(), body, backend,
                    generator, prompts, timings, "m:x");
                RewriteResult result = rewriter.RewriteAsync(request, default).GetAwaiter().GetResult();
                double rewriteMs = watch.Elapsed.TotalMilliseconds - measureMs;
                // As the proxy sends it: the JSON around the streamed tensors, read through to the end.
                byte[] json = JsonSerializer.SerializeToUtf8Bytes(body, LoPAProxy.Proxy.Requests.JsonBodies.Outgoing);
                using Stream forwarded = result.Embedded is { Count: > 0 } embedded
                    ? StreamedBody.Of(json, embedded) : new MemoryStream(json);
                long sent = 0;
                for (int n; (n = forwarded.Read(copy)) > 0;) sent += n;
                double sentMs = watch.Elapsed.TotalMilliseconds - measureMs - rewriteMs;
                long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
                long values = prompts.Sum(p => (long)(p.Ids!.Length + generator.Rows) * dim);
                if (round == Rounds - 1)
                {
                    Console.WriteLine($"| {dialect} | {values} | {allocated} | {(double)allocated / values:F2} | " +
                        $"{(double)sent / values:F2} | {measureMs:F1} | " +
                        $"{timings.EncoderMs + timings.GeneratorMs:F1} | " +
                        $"{rewriteMs - timings.EncoderMs - timings.GeneratorMs:F1} | {sentMs:F1} |");
                }
            }
        }
        return 0;
    }
}
