using System.Data;
using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;

namespace LoPAProxy.Proxy.Store;

/// <summary>
/// The one implementation of <see cref="ITenancyStore"/>, in portable SQL over ADO.NET (both SQLite and PostgreSQL
/// accept every statement here: @name parameters, ON CONFLICT … DO UPDATE, EXCLUDED). Subclasses supply
/// connections, the binary column type and how a committed change is announced.
/// </summary>
public abstract partial class SqlTenancyStore : ITenancyStore, IUsageStore
{
    public abstract string Kind { get; }
    public event Action<string, string?>? Changed;

    protected abstract Task<DbConnection> OpenAsync(CancellationToken cancel);
    /// <summary>BLOB (SQLite) or BYTEA (PostgreSQL).</summary>
    protected abstract string BinaryType { get; }
    /// <summary>Runs inside the writing transaction: e.g. PostgreSQL's NOTIFY, delivered on commit.</summary>
    protected virtual Task AnnounceAsync(DbConnection connection, DbTransaction transaction, string tenant,
        string? name, CancellationToken cancel) => Task.CompletedTask;

    protected void RaiseChanged(string tenant, string? name) => Changed?.Invoke(tenant, name);

    /// <summary>Isolation for writes; the unique keys arbitrate races either way.</summary>
    protected virtual IsolationLevel WriteIsolation => IsolationLevel.Serializable;

    /// <summary>True for a unique-key violation (a racing duplicate upload or tenant).</summary>
    protected abstract bool IsUniqueViolation(DbException e);

    public virtual async Task InitializeAsync(CancellationToken cancel = default)
    {
        await using var c = await OpenAsync(cancel);
        foreach (string ddl in new[]
        {
            "CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY, disabled INTEGER NOT NULL DEFAULT 0, created TEXT NOT NULL)",
            $"CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, tenant TEXT NOT NULL REFERENCES tenants(name), hash {BinaryType} NOT NULL UNIQUE, created TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0)",
            $"CREATE TABLE IF NOT EXISTS adapters (tenant TEXT NOT NULL REFERENCES tenants(name), name TEXT NOT NULL, version TEXT NOT NULL, config TEXT NOT NULL, weights {BinaryType} NOT NULL, sha256 TEXT NOT NULL, parameters BIGINT NOT NULL, size BIGINT NOT NULL, created TEXT NOT NULL, PRIMARY KEY (tenant, name, version))",
            "CREATE TABLE IF NOT EXISTS active (tenant TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL, PRIMARY KEY (tenant, name))",
        }.Concat(UsageSchema).Concat(FilesSchema()))
        {
            await Exec(c, null, ddl, cancel);
        }
    }

    public async Task PingAsync(CancellationToken cancel = default)
    {
        await using var c = await OpenAsync(cancel);
        await Exec(c, null, "SELECT 1", cancel);
    }

    // ---- tenants and keys -------------------------------------------------------------------------

    public async Task CreateTenantAsync(string name, CancellationToken cancel = default)
    {
        await Write(name, null, async (c, t) =>
        {
            if (await Scalar(c, t, "SELECT COUNT(*) FROM tenants WHERE name = @n", cancel, ("n", name)) is long n
                && n > 0)
            {
                throw new StoreConflictException($"tenant '{name}' exists");
            }

            await Exec(c, t, "INSERT INTO tenants (name, disabled, created) VALUES (@n, 0, @c)", cancel, ("n", name),
                ("c", Now()));
        }, cancel);
    }

    public async Task<IReadOnlyList<TenantRecord>> ListTenantsAsync(CancellationToken cancel = default) =>
        await Query("SELECT name, disabled, created FROM tenants ORDER BY name", r => new TenantRecord(r.GetString(0),
            r.GetInt64(1) != 0, Time(r.GetString(2))), cancel);

    public async Task<TenantRecord?> GetTenantAsync(string name, CancellationToken cancel = default) =>
        (await Query("SELECT name, disabled, created FROM tenants WHERE name = @n", r =>
            new TenantRecord(r.GetString(0), r.GetInt64(1) != 0, Time(r.GetString(2))), cancel, ("n",
            name))).FirstOrDefault();

    public async Task SetTenantDisabledAsync(string name, bool disabled, CancellationToken cancel = default) =>
        await Write(name, null, async (c, t) =>
        {
            if (await Exec(c, t, "UPDATE tenants SET disabled = @d WHERE name = @n", cancel, ("d", disabled ? 1L : 0L),
                ("n", name)) == 0)
            {
                throw new StoreNotFoundException($"tenant '{name}' does not exist");
            }
        }, cancel);

    public async Task<KeyRecord> AddKeyAsync(string tenant, byte[] keyHash, CancellationToken cancel = default)
    {
        if (keyHash.Length != 32) throw new ArgumentException("a key hash is SHA-256 (32 bytes)");
        string id = "key_" + Convert.ToHexString(RandomNumberGenerator.GetBytes(8)).ToLowerInvariant();
        string created = Now();
        await Write(tenant, null, async (c, t) =>
        {
            await RequireTenant(c, t, tenant, cancel);
            await Exec(c, t, "INSERT INTO api_keys (id, tenant, hash, created, revoked) VALUES (@i, @t, @h, @c, 0)",
                cancel, ("i", id), ("t", tenant), ("h", keyHash), ("c", created));
        }, cancel);
        return new KeyRecord(id, tenant, Time(created), false);
    }

    public async Task<IReadOnlyList<KeyRecord>> ListKeysAsync(string tenant, CancellationToken cancel = default) =>
        await Query("SELECT id, tenant, created, revoked FROM api_keys WHERE tenant = @t ORDER BY created, id",
            r => new KeyRecord(r.GetString(0), r.GetString(1), Time(r.GetString(2)), r.GetInt64(3) != 0), cancel, ("t",
                tenant));

    public async Task<bool> RevokeKeyAsync(string tenant, string keyId, CancellationToken cancel = default)
    {
        int n = 0;
        await Write(tenant, null, async (c, t) => n = await Exec(c, t,
            "UPDATE api_keys SET revoked = 1 WHERE id = @i AND tenant = @t", cancel, ("i", keyId), ("t",
            tenant)), cancel);
        return n > 0;
    }

    public async Task<string?> FindTenantByKeyHashAsync(byte[] keyHash, CancellationToken cancel = default) =>
        (await Query("SELECT k.tenant FROM api_keys k JOIN tenants t ON t.name = k.tenant WHERE k.hash = @h AND k.revoked = 0 AND t.disabled = 0",
            r => r.GetString(0), cancel, ("h", keyHash))).FirstOrDefault();

    // ---- adapters -----------------------------------------------------------------------------------

    public async Task<AdapterVersionInfo> PutAdapterAsync(string tenant, string name, string version, string configJson,
        byte[] weights, long parameters, bool activate, AdapterQuota? quota = null, CancellationToken cancel = default)
    {
        string sha = Convert.ToHexString(SHA256.HashData(weights)).ToLowerInvariant(), created = Now();
        bool active = false;
        await Write(tenant, name, async (c, t) =>
        {
            await LockTenantAsync(c, t, tenant, cancel);
            await RequireTenant(c, t, tenant, cancel);
            if (quota is not null) await CheckQuota(c, t, tenant, weights.Length, quota, cancel);
            if (await Scalar(c, t, "SELECT COUNT(*) FROM adapters WHERE tenant = @t AND name = @n AND version = @v",
                cancel, ("t", tenant), ("n", name), ("v", version)) is long n && n > 0)
            {
                throw new StoreConflictException($"adapter '{name}@{version}' exists; versions are immutable");
            }

            await Exec(c, t,
                "INSERT INTO adapters (tenant, name, version, config, weights, sha256, parameters, size, created) VALUES (@t, @n, @v, @cfg, @w, @s, @p, @z, @c)", cancel,
                ("t", tenant), ("n", name), ("v", version), ("cfg", configJson), ("w", weights), ("s", sha), ("p",
                    parameters), ("z", (long)weights.Length), ("c", created));
            bool first = await Scalar(c, t, "SELECT COUNT(*) FROM active WHERE tenant = @t AND name = @n", cancel,
                ("t", tenant), ("n", name)) is long a && a == 0;
            if (activate || first)
            {
                await SetActive(c, t, tenant, name, version, cancel);
                active = true;
            }
        }, cancel);
        return new AdapterVersionInfo(tenant, name, version, sha, parameters, weights.Length, Time(created), active);
    }

    public async Task<IReadOnlyList<AdapterVersionInfo>> ListAdaptersAsync(string tenant,
        CancellationToken cancel = default) =>
        await Query("SELECT a.tenant, a.name, a.version, a.sha256, a.parameters, a.size, a.created, CASE WHEN x.version IS NULL THEN 0 ELSE 1 END " +
                    "FROM adapters a LEFT JOIN active x ON x.tenant = a.tenant AND x.name = a.name AND x.version = a.version WHERE a.tenant = @t ORDER BY a.name, a.created, a.version",
            Info, cancel, ("t", tenant));

    public async Task<StoredAdapter?> GetAdapterAsync(string tenant, string name, string? version,
        CancellationToken cancel = default)
    {
        const string Select = "SELECT a.tenant, a.name, a.version, a.sha256, a.parameters, a.size, a.created, CASE WHEN x.version IS NULL THEN 0 ELSE 1 END, a.config, a.weights " +
                              "FROM adapters a LEFT JOIN active x ON x.tenant = a.tenant AND x.name = a.name AND x.version = a.version ";
        var rows = version is null
            ? await Query(Select + "WHERE a.tenant = @t AND a.name = @n AND x.version IS NOT NULL", r =>
                new StoredAdapter(Info(r), r.GetString(8), (byte[])r[9]), cancel, ("t", tenant), ("n", name))
            : await Query(Select + "WHERE a.tenant = @t AND a.name = @n AND a.version = @v", r =>
                new StoredAdapter(Info(r), r.GetString(8), (byte[])r[9]), cancel, ("t", tenant), ("n", name), ("v",
                version));
        return rows.FirstOrDefault();
    }

    public async Task<string?> ResolveVersionAsync(string tenant, string name, string? version,
        CancellationToken cancel = default)
    {
        var rows = version is null
            ? await Query("SELECT version FROM active WHERE tenant = @t AND name = @n", r => r.GetString(0), cancel,
                ("t", tenant), ("n", name))
            : await Query("SELECT version FROM adapters WHERE tenant = @t AND name = @n AND version = @v", r =>
                r.GetString(0),
                cancel, ("t", tenant), ("n", name), ("v", version));
        return rows.FirstOrDefault();
    }

    public async Task<bool> DeleteAdapterAsync(string tenant, string name, string? version,
        CancellationToken cancel = default)
    {
        int n = 0;
        await Write(tenant, name, async (c, t) =>
        {
            if (version is null)
            {
                n = await Exec(c, t, "DELETE FROM adapters WHERE tenant = @t AND name = @n", cancel, ("t", tenant),
                    ("n", name));
                await Exec(c, t, "DELETE FROM active WHERE tenant = @t AND name = @n", cancel, ("t", tenant), ("n",
                    name));
                return;
            }
            n = await Exec(c, t, "DELETE FROM adapters WHERE tenant = @t AND name = @n AND version = @v", cancel, ("t",
                tenant), ("n", name), ("v", version));
            // Deleting the active version leaves the name without one (nothing is silently activated instead).
            await Exec(c, t, "DELETE FROM active WHERE tenant = @t AND name = @n AND version = @v", cancel, ("t",
                tenant), ("n", name), ("v", version));
        }, cancel);
        return n > 0;
    }

    public async Task<bool> ActivateAsync(string tenant, string name, string version,
        CancellationToken cancel = default)
    {
        bool found = false;
        await Write(tenant, name, async (c, t) =>
        {
            found = await Scalar(c, t,
                "SELECT COUNT(*) FROM adapters WHERE tenant = @t AND name = @n AND version = @v", cancel, ("t",
                tenant), ("n", name), ("v", version)) is long n && n > 0;
            if (found) await SetActive(c, t, tenant, name, version, cancel);
        }, cancel);
        return found;
    }

    public async Task<(int Count, long Bytes)> UsageAsync(string tenant, CancellationToken cancel = default) =>
        (await Query("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM adapters WHERE tenant = @t", r =>
            ((int)r.GetInt64(0), r.GetInt64(1)), cancel, ("t", tenant))).First();

    // ---- plumbing --------------------------------------------------------------------------------------

    private static AdapterVersionInfo Info(DbDataReader r) =>
        new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetInt64(4), r.GetInt64(5),
            Time(r.GetString(6)), Convert.ToInt64(r[7], CultureInfo.InvariantCulture) != 0);

    private static Task SetActive(DbConnection c, DbTransaction t, string tenant, string name,
        string version, CancellationToken cancel) =>
        Exec(c, t,
            "INSERT INTO active (tenant, name, version) VALUES (@t, @n, @v) ON CONFLICT (tenant, name) DO UPDATE SET version = EXCLUDED.version", cancel, ("t", tenant), ("n", name), ("v", version));

    /// <summary>
    /// Serialises this tenant's writes for the rest of the transaction (PostgreSQL: a row lock on the tenant; SQLite
    /// needs nothing: its write transactions begin IMMEDIATE and so run one at a time).
    /// </summary>
    protected virtual Task LockTenantAsync(DbConnection c, DbTransaction t, string tenant, CancellationToken cancel) =>
        Task.CompletedTask;

    private static async Task CheckQuota(DbConnection c, DbTransaction t, string tenant, long adding,
        AdapterQuota quota,
        CancellationToken cancel)
    {
        long count = await Scalar(c, t, "SELECT COUNT(*) FROM adapters WHERE tenant = @t", cancel, ("t", tenant)) ?? 0;
        long bytes = await Scalar(c, t, "SELECT COALESCE(SUM(size), 0) FROM adapters WHERE tenant = @t", cancel, ("t",
            tenant)) ?? 0;
        if (count + 1 > quota.MaxAdapters || bytes + adding > quota.MaxBytes)
        {
            throw new StoreQuotaException(
                $"quota: at most {quota.MaxAdapters} adapter versions and {quota.MaxBytes} bytes per tenant " +
                $"(now {count}, {bytes} bytes)");
        }
    }

    private static async Task RequireTenant(DbConnection c, DbTransaction t, string tenant, CancellationToken cancel)
    {
        if (await Scalar(c, t, "SELECT COUNT(*) FROM tenants WHERE name = @n", cancel, ("n", tenant)) is not long n
            || n == 0)
        {
            throw new StoreNotFoundException($"tenant '{tenant}' does not exist");
        }
    }

    /// <summary>One transaction: all of <paramref name="work"/> or none of it; announced, then raised, after
    /// commit (unless <paramref name="announce"/> is false: a change no replica caches, such as a file).</summary>
    private async Task Write(string tenant, string? name, Func<DbConnection, DbTransaction, Task> work,
        CancellationToken cancel, bool announce = true)
    {
        try
        {
            await using var c = await OpenAsync(cancel);
            await using var t = await c.BeginTransactionAsync(WriteIsolation, cancel);
            await work(c, t);
            if (announce) await AnnounceAsync(c, t, tenant, name, cancel);
            await t.CommitAsync(cancel);
        }
        catch (DbException e) when (IsUniqueViolation(e))
        {
            throw new StoreConflictException(name is null
                ? $"a conflicting change was made to tenant '{tenant}' at the same time" : $"'{name}' already has that version");
        }
        if (announce) RaiseChanged(tenant, name);
    }

    private async Task<List<T>> Query<T>(string sql, Func<DbDataReader, T> map, CancellationToken cancel,
        params (string Name, object Value)[] args)
    {
        await using var c = await OpenAsync(cancel);
        await using var cmd = Command(c, null, sql, args);
        await using var r = await cmd.ExecuteReaderAsync(cancel);
        var list = new List<T>();
        while (await r.ReadAsync(cancel)) list.Add(map(r));
        return list;
    }

    protected static async Task<int> Exec(DbConnection c, DbTransaction? t, string sql, CancellationToken cancel,
        params (string Name, object Value)[] args)
    {
        await using var cmd = Command(c, t, sql, args);
        return await cmd.ExecuteNonQueryAsync(cancel);
    }

    private static async Task<long?> Scalar(DbConnection c, DbTransaction t, string sql, CancellationToken cancel,
        params (string Name, object Value)[] args)
    {
        await using var cmd = Command(c, t, sql, args);
        object? v = await cmd.ExecuteScalarAsync(cancel);
        return v is null or DBNull ? null : Convert.ToInt64(v, CultureInfo.InvariantCulture);
    }

    private static DbCommand Command(DbConnection c, DbTransaction? t, string sql, (string Name, object Value)[] args)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = t;
        foreach (var (n, v) in args)
        {
            var p = cmd.CreateParameter();
            p.ParameterName = "@" + n;
            p.Value = v;
            cmd.Parameters.Add(p);
        }
        return cmd;
    }

    private static string Now() => Stamp(DateTimeOffset.UtcNow);
    private static string Stamp(DateTimeOffset time) =>
        time.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture);
    private static DateTimeOffset Time(string s) => DateTimeOffset.Parse(s, CultureInfo.InvariantCulture,
        DateTimeStyles.RoundtripKind);

    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }
}
