using LoPAProxy.Engine.Formats;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Models;
using LoPAProxy.Proxy.SoftPrompts;
using LoPAProxy.Proxy.Store;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Hosting;

/// <summary>
/// What must be done before the first request, as the host starts and before the listeners open: the store's
/// schema and the tenants configuration names (a store that cannot be opened fails the start with one message
/// naming it), the configured encoders loaded, every cluster's foundation model loaded (its tokenizer built, its
/// embedding table mapped — so the first request does not pay for it; a model that cannot be loaded is logged and
/// its requests fail as before), the shared rate-limit counters prepared (not fatal: requests then meet
/// WhenCountersDown).
/// </summary>
public sealed class StartupWork(ITenancyStore store, IOptions<LoPAOptions> options, EncoderPool encoders,
    FoundationModels models, IRateCounterStore counters, ILogger<StartupWork> log) : IHostedService
{
    public async Task StartAsync(CancellationToken cancel)
    {
        LoPAOptions o = options.Value;
        await TenancyStores.PrepareOrExplainAsync(store, o.Store, o.Tenants.Keys, cancel);
        encoders.Preload((name, e) => log.LogError(e, "encoder {Encoder} failed to load", name));
        LoadModels(o);
        ReturnLoadingGarbage();
        await PrepareCountersAsync(cancel);
    }

    /// <summary>Loading a vocabulary parses its whole file's metadata (128k pieces as strings for a Llama-3-size
    /// model) and keeps a fraction; one compacting collection gives the rest back to the OS before serving
    /// (measured: idle RSS 134.4 → see docs/benchmarks.md), instead of it staying committed until load arrives.
    /// </summary>
    private static void ReturnLoadingGarbage() =>
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);

    public Task StopAsync(CancellationToken cancel) => Task.CompletedTask;

    private void LoadModels(LoPAOptions o)
    {
        foreach (string path in o.Clusters.Values.Select(c => c.ModelPath).OfType<string>().Distinct())
        {
            try
            {
                models.Get(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or TensorFileException
                or InvalidOperationException or FormatException)
            {
                log.LogError(e, "the foundation model {Path} failed to load", path);
            }
        }
    }

    private async Task PrepareCountersAsync(CancellationToken cancel)
    {
        try
        {
            await counters.PrepareAsync(cancel);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException or IOException)
        {
            log.LogWarning("the {Kind} rate-limit counters are not reachable at start-up: {Message}", counters.Kind,
                e.Message);
        }
    }
}
