using System.Diagnostics;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Store;
using LoPAProxy.Proxy.Tenancy;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- compare store [adapters] [postgres connection string]`: cold adapter load (store →
/// ready generator, cache miss) p50/p99 for SQLite and PostgreSQL, and memory while requests cycle through every
/// stored adapter with a bounded cache.
/// </summary>
public static class StoreLoad
{
    public static async Task<int> Run(int count, string? postgres)
    {
        var config = new AdapterConfig
        {
            NumVirtualTokens = 10, TokenDim = 64, Rank = 4, HiddenSize = 16,
            Encoder = "fm-mean", EncoderDim = 64
        };
        byte[] weights = LopaAdapter.CreateRandom(config, 1).ToSingleFile();
        string configJson = config.ToJson();
        Console.WriteLine($"{count} adapters of {weights.Length / 1024.0:F1} KiB ({config.TrainableParameters:N0} parameters each), 100 tenants");
        Console.WriteLine();
        Console.WriteLine("| store | seeding s | cold load p50 ms | cold load p99 ms | managed heap before → after cycling (cache 256) |");
        Console.WriteLine("|---|---:|---:|---:|---|");
        var stores = new List<(string, Func<ITenancyStore>)> { ("SQLite (WAL)", () =>
            new SqliteTenancyStore(Path.Combine(Path.GetTempPath(), $"lopa-bench-{Guid.NewGuid():N}.db"))) };
        if (postgres != null) stores.Add(("PostgreSQL", () => new PostgresTenancyStore(postgres)));
        foreach (var (label, make) in stores)
        {
            await using ITenancyStore store = make();
            await store.InitializeAsync();
            string run = Guid.NewGuid().ToString("N")[..8];
            var sw = Stopwatch.StartNew();
            for (int t = 0; t < 100; t++) await store.CreateTenantAsync($"t{t}-{run}");
            await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 4 },
                async (i, ct) =>
                await store.PutAdapterAsync($"t{i % 100}-{run}", $"a{i / 100}", "1", configJson, weights,
                    config.TrainableParameters, true, cancel: ct));
            double seeding = sw.Elapsed.TotalSeconds;

            var catalog = new AdapterCatalog(Options.Create(new LoPAOptions { Adapters = new AdapterOptions { CacheSize = 256 } }), store);
            var rng = new Random(7);
            var samples = new List<double>();
            for (int n = 0; n < 500; n++)
            {
                int i = rng.Next(count);
                var fresh = new AdapterCatalog(Options.Create(new LoPAOptions { Adapters = new AdapterOptions { CacheSize = 1 } }), store); // always a miss
                var s = Stopwatch.StartNew();
                if (await fresh.FindAsync($"t{i % 100}-{run}", $"a{i / 100}",
                    default) is null)
                {
                    throw new InvalidOperationException("missing adapter");
                }

                samples.Add(s.Elapsed.TotalMilliseconds);
            }
            samples.Sort();
            GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
            long before = GC.GetTotalMemory(true);
            for (int i = 0; i < count; i++) await catalog.FindAsync($"t{i % 100}-{run}", $"a{i / 100}", default);
            GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
            long after = GC.GetTotalMemory(true);
            Console.WriteLine($"| {label} | {seeding:F1} | {samples[samples.Count / 2]:F2} | {samples[(int)(samples.Count * 0.99)]:F2} | {before / 1048576.0:F1} MiB → {after / 1048576.0:F1} MiB ({catalog.Count} cached) |");
        }
        return 0;
    }
}
