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
/// `dotnet run -c Release -- compare rewrite-memory`: bytes allocated per embedding value when the full-sequence
/// dialects rewrite a request (measure, rewrite, serialise the body as forwarded), for the per-request memory bound
/// in docs/proxy.md, beside the bytes that go on the wire per value. stories260K (d = 64), fm-mean adapter, m = 10;
/// 16 prompts of ~250 tokens; all threads' allocations counted.
/// </summary>
public static class RewriteMemory
{
    public static int Run()
    {
        string model = Path.Combine(RepoPaths.RepoDir(), "..", "shared", "models", "stories260K",
            "stories260K.bin");
        var options = Options.Create(new LoPAOptions { EncoderFiles = new EncoderPaths { FoundationModel = model } });
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
            NumVirtualTokens = 10, TokenDim = 64, Rank = 4, HiddenSize = 256,
            Encoder = "fm-mean", EncoderDim = 64
        };
        var generator = new SoftPromptGenerator(LopaAdapter.CreateRandom(config, 1));
        string prompt = string.Join(" ", Enumerable.Repeat("Tom had a red kite and Lily saw a big cat.", 25));
        Console.WriteLine("| dialect | embedding values | bytes allocated | bytes per value | wire bytes per value |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        var copy = new byte[81920]; // YARP copies a request body through a pooled buffer of this size
        foreach (var (dialect, rewriter) in dialects)
        {
            var backend = new BackendOptions
            {
                Dialect = dialect, Model = "stories260K", HiddenSize = 64,
                ModelPath = model
            };
            for (int round = 0; round < 3; round++)
            {
                var body = new JsonObject
                {
                    ["model"] = "stories260K:x",
                    ["prompt"] = new JsonArray(Enumerable.Repeat(prompt, 16).Select(p => (JsonNode?)p).ToArray())
                };
                long before = GC.GetTotalAllocatedBytes(precise: true);
                var prompts = budget.MeasureCompletions(body, backend, generator.Rows);
                var request = new DialectRequest(new Microsoft.AspNetCore.Http.DefaultHttpContext(), body, backend,
                    generator, prompts, new SoftPromptTimings(), "stories260K:x");
                RewriteResult result = rewriter.RewriteAsync(request, default).GetAwaiter().GetResult();
                // As the proxy sends it: the JSON around the streamed tensors, read through to the end.
                byte[] json = JsonSerializer.SerializeToUtf8Bytes(body, LoPAProxy.Proxy.Requests.JsonBodies.Outgoing);
                using Stream forwarded = result.Embedded is { Count: > 0 } embedded
                    ? StreamedBody.Of(json, embedded) : new MemoryStream(json);
                long sent = 0;
                for (int n; (n = forwarded.Read(copy)) > 0;) sent += n;
                long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
                long values = prompts.Sum(p => (long)(p.Ids!.Length + generator.Rows) * 64);
                if (round == 2)
                {
                    Console.WriteLine($"| {dialect} | {values} | {allocated} | {(double)allocated / values:F1} | " +
                        $"{(double)sent / values:F2} |");
                }
            }
        }
        return 0;
    }
}
