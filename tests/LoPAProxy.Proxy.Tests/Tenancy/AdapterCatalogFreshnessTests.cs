using LoPAProxy.Core.Adapters;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Store;
using LoPAProxy.Proxy.Tenancy;
using LoPAProxy.Proxy.Tests.Store;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Tests.Tenancy;

/// <summary>"Acknowledged means served": the race the attack run found (a load that straddles an activation).</summary>
public class AdapterCatalogFreshnessTests
{
    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task A_load_that_straddles_an_activation_is_never_cached(string kind)
    {
        ScratchDatabase? database = kind == "postgres" ? await ScratchDatabase.CreateAsync("lopa_catalog") : null;
        await using (database)
        {
            ITenancyStore real = database is null
                ? new SqliteTenancyStore(Path.Combine(TempDir.Create(), "lopa.db"))
                : new PostgresTenancyStore(database.ConnectionString);
            await using var store = new SlowReadStore(real);
            await store.InitializeAsync();
            await store.CreateTenantAsync("acme");
            await PutAsync(store, "1", seed: 1, activate: true);
            await PutAsync(store, "2", seed: 2, activate: false);
            var catalog = new AdapterCatalog(Options.Create(new LoPAOptions()), store);

            // A request starts loading "story" (version 1 is active) and is held right after its read …
            store.Hold();
            Task<Core.Generation.SoftPromptGenerator?> straddling = catalog.FindAsync("acme", "story", default);
            await store.ReadStarted.Task;
            // … version 2 is activated and acknowledged meanwhile …
            Assert.True(await store.ActivateAsync("acme", "story", "2"));
            store.Release();
            Assert.Equal(1, VersionOf(await straddling)); // it began before the change: old is fine

            // … and every request after the acknowledgement gets version 2.
            for (int i = 0; i < 3; i++)
                Assert.Equal(2, VersionOf(await catalog.FindAsync("acme", "story", default)));
        }
    }

    [Fact]
    public async Task A_missed_notification_is_caught_by_revalidation_within_the_bound()
    {
        string path = Path.Combine(TempDir.Create(), "lopa.db");
        await using var writer = new SqliteTenancyStore(path);
        await using var reader = new SqliteTenancyStore(path); // another process's view: it hears of no changes
        await writer.InitializeAsync();
        await writer.CreateTenantAsync("acme");
        await PutAsync(writer, "1", seed: 1, activate: true);
        await PutAsync(writer, "2", seed: 2, activate: false);
        var options = new LoPAOptions { Adapters = new AdapterOptions { RevalidateSeconds = 0.3 } };
        var catalog = new AdapterCatalog(Options.Create(options), reader);
        Assert.Equal(1, VersionOf(await catalog.FindAsync("acme", "story", default)));
        Assert.True(await writer.ActivateAsync("acme", "story", "2"));
        Assert.Equal(1, VersionOf(await catalog.FindAsync("acme", "story", default))); // cached, not yet stale
        await Task.Delay(400);
        Assert.Equal(2, VersionOf(await catalog.FindAsync("acme", "story", default)));
        Assert.True(await writer.DeleteAdapterAsync("acme", "story", null));
        await Task.Delay(400);
        Assert.Null(await catalog.FindAsync("acme", "story", default));
    }

    /// <summary>Which of the two uploaded versions a generator holds (by its Z_S).</summary>
    private static int VersionOf(Core.Generation.SoftPromptGenerator? generator)
    {
        float[] zs = generator!.Adapter.PromptEmbeddings!;
        for (int version = 1; version <= 2; version++)
        {
            if (zs.SequenceEqual(LoPAProxy.Proxy.Tests.Store.StoreRig.Adapter(version)
                .PromptEmbeddings!))
            {
                return version;
            }
        }

        return 0;
    }

    private static Task PutAsync(ITenancyStore store, string version, int seed, bool activate)
    {
        LopaAdapter adapter = LoPAProxy.Proxy.Tests.Store.StoreRig.Adapter(seed);
        return store.PutAdapterAsync("acme", "story", version, adapter.Config.ToJson(), adapter.ToSingleFile(),
            adapter.Config.TrainableParameters, activate);
    }
}
