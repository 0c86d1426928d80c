using System.Security.Cryptography;
using System.Text;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Proxy.Store;
using Npgsql;

namespace LoPAProxy.Proxy.Tests.Store;

/// <summary>The same suite against every store: SQLite (a fresh file) and PostgreSQL (a fresh database on the private server CI starts).</summary>
public abstract class StoreConformanceTests : IAsyncLifetime
{
    protected ITenancyStore Store { get; private set; } = null!;
    protected abstract Task<ITenancyStore> CreateAsync();
    protected abstract Task<ITenancyStore> SecondReplicaAsync();

    public async Task InitializeAsync()
    {
        Store = await CreateAsync();
        await Store.InitializeAsync();
    }

    public virtual async Task DisposeAsync() => await Store.DisposeAsync();

    private static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));
    private static byte[] Weights(int seed, int n = 4096) { var b = new byte[n]; new Random(seed).NextBytes(b); return b; }

    [Fact]
    public async Task Tenants_are_created_listed_and_disabled()
    {
        await Store.CreateTenantAsync("acme");
        await Store.CreateTenantAsync("globex");
        await Assert.ThrowsAsync<StoreConflictException>(() => Store.CreateTenantAsync("acme"));
        Assert.Equal(new[] { "acme", "globex" }, (await Store.ListTenantsAsync()).Select(t => t.Name));
        await Store.SetTenantDisabledAsync("acme", true);
        Assert.True((await Store.GetTenantAsync("acme"))!.Disabled);
        await Assert.ThrowsAsync<StoreNotFoundException>(() => Store.SetTenantDisabledAsync("nobody", true));
        Assert.Null(await Store.GetTenantAsync("nobody"));
    }

    [Fact]
    public async Task Keys_resolve_to_their_tenant_until_revoked_or_disabled_and_only_the_owner_revokes()
    {
        await Store.CreateTenantAsync("acme");
        await Store.CreateTenantAsync("globex");
        KeyRecord k1 = await Store.AddKeyAsync("acme", Hash("acme-secret-key-1"));
        await Store.AddKeyAsync("globex", Hash("globex-secret-key"));
        Assert.Equal("acme", await Store.FindTenantByKeyHashAsync(Hash("acme-secret-key-1")));
        Assert.Null(await Store.FindTenantByKeyHashAsync(Hash("unknown")));
        Assert.False(await Store.RevokeKeyAsync("globex", k1.Id));            // not globex's key
        Assert.Equal("acme", await Store.FindTenantByKeyHashAsync(Hash("acme-secret-key-1")));
        Assert.True(await Store.RevokeKeyAsync("acme", k1.Id));
        Assert.Null(await Store.FindTenantByKeyHashAsync(Hash("acme-secret-key-1")));
        Assert.True((await Store.ListKeysAsync("acme")).Single().Revoked);
        await Store.SetTenantDisabledAsync("globex", true);
        Assert.Null(await Store.FindTenantByKeyHashAsync(Hash("globex-secret-key")));
        await Assert.ThrowsAsync<StoreNotFoundException>(() => Store.AddKeyAsync("nobody", Hash("x")));
    }

    [Fact]
    public async Task Versions_are_immutable_the_first_is_active_and_activation_rolls_forward_and_back()
    {
        await Store.CreateTenantAsync("acme");
        byte[] w1 = Weights(1), w2 = Weights(2);
        AdapterVersionInfo v1 = await Store.PutAdapterAsync("acme", "sentiment", "1", "{\"v\":1}", w1, 640, activate: false);
        Assert.True(v1.Active);                                                // the first version of a name is active
        Assert.Equal(Convert.ToHexString(SHA256.HashData(w1)).ToLowerInvariant(), v1.Sha256);
        AdapterVersionInfo v2 = await Store.PutAdapterAsync("acme", "sentiment", "2", "{\"v\":2}", w2, 640, activate: false);
        Assert.False(v2.Active);
        await Assert.ThrowsAsync<StoreConflictException>(() => Store.PutAdapterAsync("acme", "sentiment", "1", "{}", w2, 1, false));
        Assert.Equal(w1, (await Store.GetAdapterAsync("acme", "sentiment", null))!.Weights);
        Assert.True(await Store.ActivateAsync("acme", "sentiment", "2"));
        StoredAdapter active = (await Store.GetAdapterAsync("acme", "sentiment", null))!;
        Assert.Equal(("2", "{\"v\":2}"), (active.Info.Version, active.ConfigJson));
        Assert.Equal(w2, active.Weights);
        Assert.True(await Store.ActivateAsync("acme", "sentiment", "1"));    // roll back
        Assert.Equal("1", (await Store.GetAdapterAsync("acme", "sentiment", null))!.Info.Version);
        Assert.False(await Store.ActivateAsync("acme", "sentiment", "9"));
        Assert.Equal((2, (long)(w1.Length + w2.Length)), await Store.UsageAsync("acme"));
        Assert.Equal(new[] { ("1", true), ("2", false) }, (await Store.ListAdaptersAsync("acme")).Select(a => (a.Version, a.Active)));
        Assert.True(await Store.DeleteAdapterAsync("acme", "sentiment", "1"));
        Assert.Null(await Store.GetAdapterAsync("acme", "sentiment", null)); // the active one is gone: no silent replacement
        Assert.NotNull(await Store.GetAdapterAsync("acme", "sentiment", "2"));
        Assert.True(await Store.DeleteAdapterAsync("acme", "sentiment", null));
        Assert.Empty(await Store.ListAdaptersAsync("acme"));
        Assert.False(await Store.DeleteAdapterAsync("acme", "sentiment", null));
    }

    [Fact]
    public async Task No_call_reaches_another_tenants_adapters()
    {
        await Store.CreateTenantAsync("acme");
        await Store.CreateTenantAsync("globex");
        await Store.PutAdapterAsync("globex", "secret", "1", "{}", Weights(3), 1, true);
        Assert.Null(await Store.GetAdapterAsync("acme", "secret", null));
        Assert.Null(await Store.GetAdapterAsync("acme", "secret", "1"));
        Assert.Empty(await Store.ListAdaptersAsync("acme"));
        Assert.False(await Store.ActivateAsync("acme", "secret", "1"));
        Assert.False(await Store.DeleteAdapterAsync("acme", "secret", null));
        Assert.Equal((0, 0L), await Store.UsageAsync("acme"));
        Assert.NotNull(await Store.GetAdapterAsync("globex", "secret", null));   // untouched
        await Assert.ThrowsAsync<StoreNotFoundException>(() => Store.PutAdapterAsync("nobody", "x", "1", "{}", Weights(4), 1, true));
    }

    [Fact]
    public async Task Racing_uploads_of_one_version_store_exactly_one()
    {
        await Store.CreateTenantAsync("acme");
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(async i =>
        {
            try { await Store.PutAdapterAsync("acme", "race", "1", $"{{\"writer\":{i}}}", Weights(10 + i), 1, true); return true; }
            catch (StoreConflictException) { return false; }
        }));
        Assert.Equal(1, results.Count(ok => ok));
        StoredAdapter stored = (await Store.GetAdapterAsync("acme", "race", "1"))!;
        Assert.Equal(Convert.ToHexString(SHA256.HashData(stored.Weights)).ToLowerInvariant(), stored.Info.Sha256);
        Assert.Single(await Store.ListAdaptersAsync("acme"));
    }

    [Fact]
    public async Task Changes_are_announced_to_this_replica_and_where_supported_to_others()
    {
        var seen = new List<(string, string?)>();
        Store.Changed += (t, n) => { lock (seen) seen.Add((t, n)); };
        await using ITenancyStore other = await SecondReplicaAsync();
        await other.InitializeAsync();
        var otherSeen = new TaskCompletionSource<(string, string?)>(TaskCreationOptions.RunContinuationsAsynchronously);
        other.Changed += (t, n) => { if (n == "announced") otherSeen.TrySetResult((t, n)); };
        await Store.CreateTenantAsync("acme");
        await Store.PutAdapterAsync("acme", "announced", "1", "{}", Weights(5), 1, true);
        lock (seen) Assert.Contains(("acme", "announced"), seen);
        if (Store.Kind == "postgres")
            Assert.Equal(("acme", "announced"), await otherSeen.Task.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    /// <summary>#27 item 1: files per tenant — listed newest first, read back byte for byte, invisible to another
    /// tenant, deleted by their owner only, within the per-tenant quota checked in the insert's transaction.</summary>
    [Fact]
    public async Task Files_are_kept_per_tenant_within_the_quota()
    {
        await Store.CreateTenantAsync("acme");
        await Store.CreateTenantAsync("globex");
        var files = (IFileStore)Store;
        DateTimeOffset now = DateTimeOffset.UtcNow;
        StoredFileInfo first = new("file-1", "acme", "a.jsonl", "fine-tune", 100, now.AddSeconds(-5), "chat", 3);
        StoredFileInfo second = first with { Id = "file-2", FileName = "b.jsonl", Created = now };
        await files.PutFileAsync(first, Weights(1, 100), maxBytesPerTenant: 250);
        await files.PutFileAsync(second, Weights(2, 100), maxBytesPerTenant: 250);
        await Assert.ThrowsAsync<StoreQuotaException>(() =>
            files.PutFileAsync(first with { Id = "file-3" }, Weights(3, 100), maxBytesPerTenant: 250));
        Assert.Equal(["file-2", "file-1"], (await files.ListFilesAsync("acme")).Select(f => f.Id));
        StoredFileInfo read = (await files.GetFileAsync("acme", "file-1"))!;
        Assert.Equal(("a.jsonl", 100L, "chat", 3), (read.FileName, read.Bytes, read.Format, read.Examples));
        Assert.Equal(Weights(1, 100), await files.ReadFileContentAsync("acme", "file-1"));
        Assert.Null(await files.GetFileAsync("globex", "file-1"));
        Assert.Null(await files.ReadFileContentAsync("globex", "file-1"));
        Assert.Empty(await files.ListFilesAsync("globex"));
        Assert.False(await files.DeleteFileAsync("globex", "file-1"));
        Assert.True(await files.DeleteFileAsync("acme", "file-1"));
        Assert.Null(await files.GetFileAsync("acme", "file-1"));
        await files.PutFileAsync(first with { Id = "file-4" }, Weights(4, 100), maxBytesPerTenant: 250);
        await Assert.ThrowsAsync<StoreNotFoundException>(() =>
            files.PutFileAsync(first with { Id = "file-5", Tenant = "nobody" }, Weights(5, 10), 250));
    }
}

public sealed class SqliteStoreTests : StoreConformanceTests
{
    private readonly string _path = Path.Combine(TempDir.Create(), "lopa.db");
    protected override Task<ITenancyStore> CreateAsync()
        => Task.FromResult<ITenancyStore>(new SqliteTenancyStore(_path));
    protected override Task<ITenancyStore> SecondReplicaAsync()
        => Task.FromResult<ITenancyStore>(new SqliteTenancyStore(_path));

    [Fact]
    public async Task The_database_runs_in_wal_mode()
    {
        await using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_path}");
        await c.OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", (string?)await cmd.ExecuteScalarAsync());
    }
}

public sealed class PostgresStoreTests : StoreConformanceTests
{
    private readonly string _database = "lopa_test_" + Guid.NewGuid().ToString("N");
    private string? _connection;

    private static string Server => Environment.GetEnvironmentVariable("LOPA_TEST_PG")
        ?? throw new InvalidOperationException("LOPA_TEST_PG is not set: scripts/test.sh starts a private PostgreSQL and sets it");

    private async Task<string> Database()
    {
        if (_connection != null) return _connection;
        await using var admin = new NpgsqlConnection(Server);
        await admin.OpenAsync();
        await using (var cmd = new NpgsqlCommand($"CREATE DATABASE {_database}", admin)) await cmd.ExecuteNonQueryAsync();
        return _connection = new NpgsqlConnectionStringBuilder(Server) { Database = _database }.ToString();
    }

    protected override async Task<ITenancyStore> CreateAsync() => new PostgresTenancyStore(await Database());
    protected override async Task<ITenancyStore> SecondReplicaAsync() => new PostgresTenancyStore(await Database());

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await using var admin = new NpgsqlConnection(Server);
        await admin.OpenAsync();
        await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)", admin);
        await cmd.ExecuteNonQueryAsync();
    }
}
