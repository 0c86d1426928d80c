using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Tests.Store;

namespace LoPAProxy.Proxy.Tests.Limits;

/// <summary>Both counter stores keep the limits exact under concurrency: in this process, and in PostgreSQL.</summary>
public class RateCounterStoreTests
{
    private static async Task<(IRateCounterStore Store, IAsyncDisposable Cleanup)> Open(string kind, ManualClock clock,
        UsedTokensSince? usedSince = null, int leaseSeconds = 60)
    {
        usedSince ??= (_, _, _) => Task.FromResult(0L);
        if (kind == "local") return (new LocalRateCounters(clock, usedSince), new Nothing());
        ScratchDatabase db = await ScratchDatabase.CreateAsync("lopa_rate");
        var store = new PostgresRateCounters(db.ConnectionString, clock, usedSince, TimeSpan.FromSeconds(leaseSeconds));
        return (store, new Both(store, db));
    }

    [Theory]
    [InlineData("local")]
    [InlineData("postgres")]
    public async Task Sixty_four_concurrent_requests_against_ten_a_minute_admit_exactly_ten(string kind)
    {
        var clock = new ManualClock();
        var (store, cleanup) = await Open(kind, clock);
        await using (cleanup)
        {
            TenantLimits limits = new(10, 0, 0, 0, BudgetPeriod.Month);
            RateDecision[] decisions = await Task.WhenAll(Enumerable.Range(0, 64).Select(i =>
                Task.Run(() => store.AdmitAsync("acme", limits, 0, "lease-" + i, CancellationToken.None))));
            Assert.Equal(10, decisions.Count(d => d.Admitted));
            Assert.All(decisions.Where(d => !d.Admitted), d => Assert.Equal(Refusal.Requests, d.Refusal));
            // Another tenant has its own counters.
            Assert.True((await store.AdmitAsync("globex", limits, 0, "g", CancellationToken.None)).Admitted);
            clock.Advance(TimeSpan.FromSeconds(6));
            Assert.True((await store.AdmitAsync("acme", limits, 0, "after", CancellationToken.None)).Admitted);
            Assert.False((await store.AdmitAsync("acme", limits, 0, "after2", CancellationToken.None)).Admitted);
        }
    }

    [Theory]
    [InlineData("local")]
    [InlineData("postgres")]
    public async Task Concurrent_requests_are_capped_and_a_settled_one_frees_its_slot(string kind)
    {
        var clock = new ManualClock();
        var (store, cleanup) = await Open(kind, clock);
        await using (cleanup)
        {
            TenantLimits limits = new(0, 0, 3, 0, BudgetPeriod.Month);
            RateDecision[] decisions = await Task.WhenAll(Enumerable.Range(0, 20).Select(i =>
                Task.Run(() => store.AdmitAsync("acme", limits, 0, "lease-" + i, CancellationToken.None))));
            int[] admitted = decisions.Select((d, i) => (d, i)).Where(x => x.d.Admitted).Select(x => x.i).ToArray();
            Assert.Equal(3, admitted.Length);
            Assert.All(decisions.Where(d => !d.Admitted), d => Assert.Equal(Refusal.Concurrency, d.Refusal));
            await store.SettleAsync(new RateTicket("acme", "lease-" + admitted[0], limits, 0, 0), 0,
                CancellationToken.None);
            Assert.True((await store.AdmitAsync("acme", limits, 0, "next", CancellationToken.None)).Admitted);
            Assert.False((await store.AdmitAsync("acme", limits, 0, "next2", CancellationToken.None)).Admitted);
        }
    }

    [Fact]
    public async Task Two_replicas_counters_admit_exactly_ten_of_sixty_four_together()
    {
        TimeProvider clock = TimeProvider.System;
        await using ScratchDatabase db = await ScratchDatabase.CreateAsync("lopa_rate");
        UsedTokensSince none = (_, _, _) => Task.FromResult(0L);
        await using var one = new PostgresRateCounters(db.ConnectionString, clock, none, TimeSpan.FromMinutes(1));
        await using var two = new PostgresRateCounters(db.ConnectionString, clock, none, TimeSpan.FromMinutes(1));
        TenantLimits limits = new(10, 0, 0, 0, BudgetPeriod.Month);
        RateDecision[] decisions = await Task.WhenAll(Enumerable.Range(0, 64).Select(i =>
            Task.Run(() => (i % 2 == 0 ? one : two).AdmitAsync("acme", limits, 0, "l" + i, CancellationToken.None))));
        Assert.Equal(10, decisions.Count(d => d.Admitted));
    }

    [Fact]
    public async Task A_slot_held_by_a_replica_that_died_is_freed_when_its_lease_runs_out()
    {
        var clock = new ManualClock();
        var (store, cleanup) = await Open("postgres", clock, leaseSeconds: 30);
        await using (cleanup)
        {
            TenantLimits limits = new(0, 0, 1, 0, BudgetPeriod.Month);
            Assert.True((await store.AdmitAsync("acme", limits, 0, "dead", CancellationToken.None)).Admitted);
            Assert.False((await store.AdmitAsync("acme", limits, 0, "x", CancellationToken.None)).Admitted);
            clock.Advance(TimeSpan.FromSeconds(31)); // nobody renewed it: the real timer has not ticked yet
            Assert.True((await store.AdmitAsync("acme", limits, 0, "y", CancellationToken.None)).Admitted);
        }
    }

    [Theory]
    [InlineData("local")]
    [InlineData("postgres")]
    public async Task A_budget_starts_from_recorded_usage_runs_out_and_renews_next_period(string kind)
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 12, 2, 10, 59, 0, TimeSpan.Zero));
        var asked = new List<DateTimeOffset>();
        UsedTokensSince usedSince = (tenant, since, _) =>
        {
            lock (asked) asked.Add(since);
            return Task.FromResult(since.Hour == 10 ? 900L : 0L); // 900 already used in the 10:00 hour
        };
        var (store, cleanup) = await Open(kind, clock, usedSince);
        await using (cleanup)
        {
            TenantLimits limits = new(0, 0, 0, 1000, BudgetPeriod.Hour);
            RateDecision first = await store.AdmitAsync("acme", limits, 60, "a", CancellationToken.None);
            Assert.True(first.Admitted);
            Assert.Equal(40, first.Snapshot.BudgetRemaining);
            long period = Admission.PeriodStart(limits, Admission.Seconds(clock.GetUtcNow()));
            await store.SettleAsync(new RateTicket("acme", "a", limits, 60, period), 90, CancellationToken.None);
            RateDecision refused = await store.AdmitAsync("acme", limits, 20, "b", CancellationToken.None);
            Assert.Equal(Refusal.Budget, refused.Refusal);
            Assert.Equal(10, refused.Snapshot.BudgetRemaining);
            Assert.Equal(60, refused.RetryAfterSeconds, 3);
            clock.Advance(TimeSpan.FromMinutes(1));
            RateDecision renewed = await store.AdmitAsync("acme", limits, 20, "c", CancellationToken.None);
            Assert.True(renewed.Admitted);
            Assert.Equal(980, renewed.Snapshot.BudgetRemaining);
            Assert.Contains(new DateTimeOffset(2026, 12, 2, 11, 0, 0, TimeSpan.Zero), asked);
        }
    }

    private sealed class Nothing : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private sealed class Both(PostgresRateCounters store, ScratchDatabase db) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await store.DisposeAsync();
            await db.DisposeAsync();
        }
    }
}
