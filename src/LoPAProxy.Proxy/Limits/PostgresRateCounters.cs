using System.Collections.Concurrent;
using Npgsql;

namespace LoPAProxy.Proxy.Limits;

/// <summary>
/// Counters every replica shares, in PostgreSQL: one row of <see cref="RateCounters"/> per tenant and one lease row
/// per request in flight (a concurrency slot; live replicas renew theirs, a dead replica's expire). An admission is
/// one transaction in two round trips: BEGIN, a per-tenant advisory lock and the reads; then
/// <see cref="Admission.Decide"/> here and the writes with COMMIT. A settlement is one round trip
/// (docs/limits.md has the measured cost).
/// </summary>
public sealed class PostgresRateCounters : IRateCounterStore, IAsyncDisposable
{
    private readonly NpgsqlDataSource _source;
    private readonly TimeProvider _clock;
    private readonly UsedTokensSince _usedSince;
    private readonly TimeSpan _lease;
    private readonly ConcurrentDictionary<string, byte> _held = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _schema = new(1, 1);
    private bool _schemaReady;
    private Task? _renewer;

    public PostgresRateCounters(string connectionString, TimeProvider clock, UsedTokensSince usedSince,
        TimeSpan lease, int maxConnections = 8)
    {
        var connection = new NpgsqlConnectionStringBuilder(connectionString) { MaxPoolSize = maxConnections };
        _source = NpgsqlDataSource.Create(connection);
        _clock = clock;
        _usedSince = usedSince;
        _lease = lease;
    }

    public string Kind => "postgres";

    public async Task PrepareAsync(CancellationToken cancel)
    {
        await EnsureSchemaAsync(cancel);
        await using NpgsqlConnection c = await _source.OpenConnectionAsync(cancel);
        await LockAndReadAsync(c, "lopa warm-up", Admission.Seconds(_clock.GetUtcNow()), cancel);
        await RollbackAsync(c);
    }

    public async Task<RateDecision> AdmitAsync(string tenant, TenantLimits limits, long tokens, string lease,
        CancellationToken cancel)
    {
        await EnsureSchemaAsync(cancel);
        double now = Admission.Seconds(_clock.GetUtcNow());
        await using NpgsqlConnection c = await _source.OpenConnectionAsync(cancel);
        // BEGIN and COMMIT travel inside the two batches, so the tenant's lock is held for one round trip only.
        RateCounters counters;
        try
        {
            counters = await LockAndReadAsync(c, tenant, now, cancel);
            long period = Admission.PeriodStart(limits, now);
            if (limits.TokenBudget > 0 && counters.BudgetPeriodStart != period)
            {
                counters = counters with
                {
                    BudgetPeriodStart = period,
                    BudgetUsed = await _usedSince(tenant, DateTimeOffset.FromUnixTimeSeconds(period), cancel),
                };
            }
        }
        catch
        {
            await RollbackAsync(c);
            throw;
        }
        RateDecision decision = Admission.Decide(limits, counters, tokens, now);
        await using NpgsqlBatch write = new(c);
        if (decision.Admitted) write.BatchCommands.Add(Upsert(tenant, decision.Next));
        if (decision.Admitted && limits.ConcurrentRequests > 0)
        {
            write.BatchCommands.Add(Command("INSERT INTO rate_leases (lease, tenant, expires) VALUES (@l, @t, @e)",
                ("l", lease), ("t", tenant), ("e", now + _lease.TotalSeconds)));
        }

        write.BatchCommands.Add(Command("COMMIT"));
        await write.ExecuteNonQueryAsync(cancel);
        if (decision.Admitted && limits.ConcurrentRequests > 0) Hold(lease);
        return decision;
    }

    /// <summary>
    /// One round trip, one implicit transaction under the tenant's lock: the token bucket and the budget move by
    /// the difference between reserved and used (<see cref="Admission.ShiftTokens"/>, in SQL), the lease goes.
    /// </summary>
    public async Task SettleAsync(RateTicket ticket, long usedTokens, CancellationToken cancel)
    {
        bool leased = _held.TryRemove(ticket.Lease, out _);
        long delta = usedTokens - ticket.ReservedTokens;
        bool recount = delta != 0 && (ticket.Limits.TokensPerMinute > 0 || ticket.Limits.TokenBudget > 0);
        if (!leased && !recount) return;
        await using NpgsqlConnection c = await _source.OpenConnectionAsync(cancel);
        await using NpgsqlBatch write = new(c);
        write.BatchCommands.Add(Lock(ticket.Tenant));
        if (recount)
        {
            write.BatchCommands.Add(Command(
                "UPDATE rate_counters SET tokens_tat = CASE WHEN @shift >= 0 " +
                "THEN GREATEST(tokens_tat, @now) + @shift ELSE GREATEST(tokens_tat + @shift, @now) END, " +
                "budget_used = CASE WHEN budget_period = @p THEN GREATEST(0, budget_used + @d) ELSE budget_used END " +
                "WHERE tenant = @t",
                ("shift", Admission.TokensShift(ticket.Limits, delta)),
                ("now", Admission.Seconds(_clock.GetUtcNow())), ("p", ticket.BudgetPeriodStart), ("d", delta),
                ("t", ticket.Tenant)));
        }

        if (leased) write.BatchCommands.Add(Command("DELETE FROM rate_leases WHERE lease = @l", ("l", ticket.Lease)));
        await write.ExecuteNonQueryAsync(cancel);
    }

    /// <summary>
    /// Opens a transaction, locks the tenant for it, drops expired leases, reads its counters and live leases.
    /// </summary>
    private static async Task<RateCounters> LockAndReadAsync(NpgsqlConnection c, string tenant, double now,
        CancellationToken cancel)
    {
        await using NpgsqlBatch read = new(c);
        read.BatchCommands.Add(Command("BEGIN"));
        read.BatchCommands.Add(Lock(tenant));
        read.BatchCommands.Add(Command("DELETE FROM rate_leases WHERE tenant = @t AND expires < @now", ("t", tenant),
            ("now", now)));
        read.BatchCommands.Add(Command("SELECT COUNT(*) FROM rate_leases WHERE tenant = @t", ("t", tenant)));
        read.BatchCommands.Add(Command(
            "SELECT requests_tat, tokens_tat, budget_period, budget_used FROM rate_counters WHERE tenant = @t",
            ("t", tenant)));
        await using NpgsqlDataReader r = await read.ExecuteReaderAsync(cancel);
        await r.NextResultAsync(cancel); // past the lock's row; BEGIN and DELETE have no result set
        await r.ReadAsync(cancel);
        int inFlight = (int)r.GetInt64(0);
        await r.NextResultAsync(cancel);
        if (!await r.ReadAsync(cancel)) return RateCounters.Empty with { InFlight = inFlight };
        return new RateCounters(r.GetDouble(0), r.GetDouble(1), r.GetInt64(2), r.GetInt64(3), inFlight);
    }

    private static NpgsqlBatchCommand Lock(string tenant) =>
        Command("SELECT pg_advisory_xact_lock(hashtextextended('lopa_rate/' || @t, 0))", ("t", tenant));

    private static async Task RollbackAsync(NpgsqlConnection c)
    {
        try
        {
            await using var rollback = new NpgsqlCommand("ROLLBACK", c);
            await rollback.ExecuteNonQueryAsync();
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            // The connection is broken; the server ended the transaction with it.
        }
    }

    private static NpgsqlBatchCommand Upsert(string tenant, RateCounters n) => Command(
        "INSERT INTO rate_counters (tenant, requests_tat, tokens_tat, budget_period, budget_used) " +
        "VALUES (@t, @r, @k, @p, @u) ON CONFLICT (tenant) DO UPDATE SET requests_tat = EXCLUDED.requests_tat, " +
        "tokens_tat = EXCLUDED.tokens_tat, budget_period = EXCLUDED.budget_period, budget_used = EXCLUDED.budget_used",
        ("t", tenant), ("r", n.RequestsTat), ("k", n.TokensTat), ("p", n.BudgetPeriodStart), ("u", n.BudgetUsed));

    private static NpgsqlBatchCommand Command(string sql, params (string Name, object Value)[] args)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var (name, value) in args) command.Parameters.AddWithValue(name, value);
        return command;
    }

    private async Task EnsureSchemaAsync(CancellationToken cancel)
    {
        if (Volatile.Read(ref _schemaReady)) return;
        await _schema.WaitAsync(cancel);
        try
        {
            if (_schemaReady) return;
            await using NpgsqlConnection c = await _source.OpenConnectionAsync(cancel);
            await using NpgsqlBatch ddl = new(c);
            ddl.BatchCommands.Add(Command("SELECT pg_advisory_xact_lock(424243)"));
            ddl.BatchCommands.Add(Command("CREATE TABLE IF NOT EXISTS rate_counters (tenant TEXT PRIMARY KEY, " +
                "requests_tat DOUBLE PRECISION NOT NULL, tokens_tat DOUBLE PRECISION NOT NULL, " +
                "budget_period BIGINT NOT NULL, budget_used BIGINT NOT NULL)"));
            ddl.BatchCommands.Add(Command("CREATE TABLE IF NOT EXISTS rate_leases (lease TEXT PRIMARY KEY, " +
                "tenant TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL)"));
            ddl.BatchCommands.Add(Command("CREATE INDEX IF NOT EXISTS rate_leases_tenant ON rate_leases (tenant)"));
            await ddl.ExecuteNonQueryAsync(cancel); // one implicit transaction: the lock holds until its end
            _schemaReady = true;
        }
        finally
        {
            _schema.Release();
        }
    }

    private void Hold(string lease)
    {
        _held[lease] = 0;
        if (_renewer is null)
        {
            lock (_held)
                _renewer ??= Task.Run(() => RenewLeasesAsync(_stop.Token));
        }
    }

    /// <summary>Pushes the expiry of this replica's leases forward, three times per lease period.</summary>
    private async Task RenewLeasesAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(_lease / 3, _clock);
        while (await WaitAsync(timer, stop))
        {
            string[] leases = _held.Keys.ToArray();
            if (leases.Length == 0) continue;
            try
            {
                await using NpgsqlConnection c = await _source.OpenConnectionAsync(stop);
                await using var renew = new NpgsqlCommand("UPDATE rate_leases SET expires = @e WHERE lease = ANY(@l)",
                    c);
                renew.Parameters.AddWithValue("e", Admission.Seconds(_clock.GetUtcNow()) + _lease.TotalSeconds);
                renew.Parameters.AddWithValue("l", leases);
                await renew.ExecuteNonQueryAsync(stop);
            }
            catch (NpgsqlException)
            {
                // The database is away; the next tick tries again (admissions report the outage).
            }
        }
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken stop)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stop);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        if (_renewer is not null) await _renewer;
        await _source.DisposeAsync();
        _stop.Dispose();
        _schema.Dispose();
    }
}
