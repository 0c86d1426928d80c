using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using LoPAProxy.Proxy.Store;
using LoPAProxy.Proxy.Tests.Limits;
using LoPAProxy.Proxy.Tests.Store;
using Microsoft.Extensions.Logging;

namespace LoPAProxy.Proxy.Tests.Hardening;

/// <summary>
/// #22 item 4: the store is no longer a single point of failure. A real PostgreSQL is stopped and started again
/// while a tenant's requests keep coming: requests whose key and adapter are cached are served throughout, others
/// get 503 store_unavailable with Retry-After, uploads are refused and never half-stored, /readyz reports the
/// store, and nothing is ever a 500.
/// </summary>
public class StoreOutageTests
{
    [Fact]
    public async Task Cached_traffic_is_served_through_a_postgres_outage_and_nothing_is_a_500()
    {
        await using PrivatePostgres pg = await PrivatePostgres.StartAsync();
        var settings = new Dictionary<string, string?>
        {
            ["LoPA:Store:Kind"] = "postgres", ["LoPA:Store:ConnectionString"] = pg.ConnectionString,
            ["LoPA:Adapters:RevalidateSeconds"] = "1", ["LoPA:RateLimits:CountersTimeoutMs"] = "1000",
        };
        await using StoreRig stack = await StoreRig.StartAsync(settings);
        string key = await stack.NewTenantAsync("acme");
        string unused = await stack.NewTenantAsync("globex"); // a valid key never seen by the proxy: not cached
        using HttpClient c = stack.Client(key), stranger = stack.Client(unused), anonymous = stack.Client(null);
        Assert.Equal(201, (int)(await c.PostAsync("/v1/adapters", StoreRig.Upload("story", "1",
            StoreRig.Adapter(1)))).StatusCode);
        await RateLimitHttpTests.SetLimitsAsync(stack, "acme", new { requests_per_minute = 100_000 });

        var statuses = new ConcurrentBag<int>();
        using var stop = new CancellationTokenSource();
        async Task LoadAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                using HttpResponseMessage r = await c.PostAsJsonAsync("/v1/chat/completions",
                    HardeningFixture.Chat("stories260K:story"));
                statuses.Add((int)r.StatusCode);
            }
        }
        Task load = Task.WhenAll(LoadAsync(), LoadAsync());
        await Task.Delay(500);

        pg.Stop();
        int beforeOutage = statuses.Count;
        await Task.Delay(2500); // past RevalidateSeconds: every cache entry is stale, and still served
        using (HttpResponseMessage r = await stranger.PostAsJsonAsync("/v1/chat/completions",
            HardeningFixture.Chat("stories260K")))
        {
            Assert.Equal(503, (int)r.StatusCode);
            HardeningFixture.IsError(await r.Content.ReadAsStringAsync(), "store_unavailable");
            Assert.Equal(TimeSpan.FromSeconds(StoreOutage.RetryAfterSeconds), r.Headers.RetryAfter!.Delta);
        }
        using (HttpResponseMessage r = await c.PostAsync("/v1/adapters", StoreRig.Upload("story", "2",
            StoreRig.Adapter(2))))
        {
            Assert.Equal(503, (int)r.StatusCode);
            HardeningFixture.IsError(await r.Content.ReadAsStringAsync(), "store_unavailable");
        }
        JsonElement ready = JsonDocument.Parse(await anonymous.GetStringAsync("/readyz")).RootElement;
        Assert.False(ready.GetProperty("store").GetBoolean());
        await Task.Delay(1000);
        int duringOutage = statuses.Count - beforeOutage;
        Assert.True(duringOutage >= 4, $"{duringOutage} requests during the outage");

        await pg.StartServerAsync();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        int status = 0;
        while (DateTime.UtcNow < deadline && status != 200)
        {
            using HttpResponseMessage r = await stranger.PostAsJsonAsync("/v1/chat/completions",
                HardeningFixture.Chat("stories260K"));
            status = (int)r.StatusCode;
            if (status != 200) await Task.Delay(200);
        }
        Assert.Equal(200, status); // the uncached key works again once the store is back
        await stop.CancelAsync();
        await load;

        Assert.All(statuses, s => Assert.Equal(200, s)); // cached traffic: served before, during and after
        ready = JsonDocument.Parse(await anonymous.GetStringAsync("/readyz")).RootElement;
        Assert.True(ready.GetProperty("store").GetBoolean());
        // The refused upload left nothing behind; the same version uploads now.
        JsonElement list = JsonDocument.Parse(await c.GetStringAsync("/v1/adapters")).RootElement;
        Assert.Equal(new[] { "story@1" }, list.GetProperty("data").EnumerateArray()
            .Select(a => a.GetProperty("id").GetString()));
        Assert.Equal(201, (int)(await c.PostAsync("/v1/adapters", StoreRig.Upload("story", "2",
            StoreRig.Adapter(2)))).StatusCode);
    }

    private sealed class Lines : ILogger<StoreOutage>
    {
        public ConcurrentQueue<string> Written { get; } = new();
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel level) => true;
        public void Log<TState>(LogLevel level, EventId id, TState state, Exception? e,
            Func<TState, Exception?, string> format) => Written.Enqueue(format(state, e));
    }

    [Fact]
    public void An_outage_is_logged_once_per_interval_with_a_count_not_per_request()
    {
        var clock = new ManualClock();
        var log = new Lines();
        var outage = new StoreOutage(log, clock);
        var failure = new Npgsql.NpgsqlException("Failed to connect to 127.0.0.1:5432");
        for (int i = 0; i < 1000; i++) outage.Report(failure);
        Assert.Single(log.Written);
        Assert.True(outage.IsDown);
        clock.Advance(TimeSpan.FromSeconds(31));
        outage.Report(failure);
        Assert.Equal(2, log.Written.Count);
        Assert.Contains("1000 request(s)", log.Written.Last()); // the 999 unlogged ones and this one
        outage.Recovered();
        Assert.False(outage.IsDown);
        Assert.Contains("available again", log.Written.Last());
        Assert.True(StoreOutage.Is(failure));
        Assert.False(StoreOutage.Is(new Npgsql.PostgresException("duplicate", "ERROR", "ERROR", "23505")));
        Assert.False(StoreOutage.Is(new InvalidOperationException("a bug")));
    }
}
