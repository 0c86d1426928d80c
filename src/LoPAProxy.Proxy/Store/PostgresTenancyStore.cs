using System.Data.Common;
using Npgsql;

namespace LoPAProxy.Proxy.Store;

/// <summary>
/// The store for several proxy replicas: PostgreSQL via Npgsql. Every write NOTIFYs channel lopa_changes inside its
/// transaction (delivered on commit); every replica LISTENs on a dedicated connection and raises
/// <see cref="ITenancyStore.Changed"/>, so caches everywhere drop a changed adapter promptly.
/// </summary>
public sealed class PostgresTenancyStore(string connectionString) : SqlTenancyStore
{
    public const string Channel = "lopa_changes";
    private readonly NpgsqlDataSource _source = NpgsqlDataSource.Create(connectionString);
    private readonly CancellationTokenSource _stop = new();
    private Task? _listener;
    private int _disposed;

    public override string Kind => "postgres";
    protected override string BinaryType => "BYTEA";
    protected override System.Data.IsolationLevel WriteIsolation => System.Data.IsolationLevel.ReadCommitted;
    protected override bool IsUniqueViolation(DbException e) => e is PostgresException { SqlState: "23505" };

    public override async Task InitializeAsync(CancellationToken cancel = default)
    {
        await using (var c = await OpenAsync(cancel))
            // Serialise concurrent schema creation by several replicas starting at once.
            await Exec(c, null, "SELECT pg_advisory_lock(424242)", cancel);
        await base.InitializeAsync(cancel);
        await using (var c = await OpenAsync(cancel))
            await Exec(c, null, "SELECT pg_advisory_unlock_all()", cancel);
        _listener = Task.Run(() => ListenAsync(_stop.Token), CancellationToken.None);
    }

    protected override async Task<DbConnection> OpenAsync(CancellationToken cancel) =>
        await _source.OpenConnectionAsync(cancel);

    protected override Task AnnounceAsync(DbConnection connection, DbTransaction transaction, string tenant,
        string? name, CancellationToken cancel)
    {
        var cmd = new NpgsqlCommand("SELECT pg_notify(@c, @p)", (NpgsqlConnection)connection,
            (NpgsqlTransaction)transaction);
        cmd.Parameters.AddWithValue("c", Channel);
        cmd.Parameters.AddWithValue("p", name is null ? tenant : tenant + "/" + name);
        return cmd.ExecuteNonQueryAsync(cancel);
    }

    protected override async Task LockTenantAsync(DbConnection c, DbTransaction t, string tenant,
        CancellationToken cancel)
    {
        await using var cmd = new NpgsqlCommand("SELECT 1 FROM tenants WHERE name = @n FOR UPDATE", (NpgsqlConnection)c,
            (NpgsqlTransaction)t);
        cmd.Parameters.AddWithValue("n", tenant);
        await cmd.ExecuteNonQueryAsync(cancel);
    }

    private async Task ListenAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await using var c = await _source.OpenConnectionAsync(stop);
                c.Notification += (_, e) =>
                {
                    int slash = e.Payload.IndexOf('/');
                    RaiseChanged(slash < 0 ? e.Payload : e.Payload[..slash], slash < 0
                        ? null : e.Payload[(slash + 1)..]);
                };
                await using (var cmd = new NpgsqlCommand($"LISTEN {Channel}", c)) await cmd.ExecuteNonQueryAsync(stop);
                while (!stop.IsCancellationRequested) await c.WaitAsync(stop);
            }
            catch (OperationCanceledException) { return; }
            catch (NpgsqlException)
            {
                // Reconnect after an outage, unless the store is being disposed meanwhile.
                try
                {
                    await Task.Delay(1000, stop);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    public override async ValueTask DisposeAsync()
    {
        // Registered under two service types (adapters, usage), so the container may dispose it twice.
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        _stop.Cancel();
        if (_listener != null) await _listener.ContinueWith(_ => { }, TaskScheduler.Default);
        await _source.DisposeAsync();
        _stop.Dispose();
        await base.DisposeAsync();
    }
}
