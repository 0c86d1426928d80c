using Npgsql;

namespace LoPAProxy.Proxy.Tests.Store;

/// <summary>A fresh database on the test PostgreSQL (LOPA_TEST_PG, started by scripts/test.sh), dropped
/// afterwards.</summary>
public sealed class ScratchDatabase : IAsyncDisposable
{
    private readonly string _server, _name;

    public string ConnectionString { get; }

    private ScratchDatabase(string server, string name)
    {
        _server = server;
        _name = name;
        ConnectionString = new NpgsqlConnectionStringBuilder(server) { Database = name }.ToString();
    }

    public static string Server => Environment.GetEnvironmentVariable("LOPA_TEST_PG")
        ?? throw new InvalidOperationException("LOPA_TEST_PG is not set: run scripts/test.sh");

    public static async Task<ScratchDatabase> CreateAsync(string prefix)
    {
        var db = new ScratchDatabase(Server, prefix + "_" + Guid.NewGuid().ToString("N"));
        await using var admin = new NpgsqlConnection(db._server);
        await admin.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE {db._name}", admin);
        await create.ExecuteNonQueryAsync();
        return db;
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var admin = new NpgsqlConnection(_server);
        await admin.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_name} WITH (FORCE)", admin);
        await drop.ExecuteNonQueryAsync();
    }
}
