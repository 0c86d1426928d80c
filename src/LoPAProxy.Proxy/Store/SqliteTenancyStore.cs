using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace LoPAProxy.Proxy.Store;

/// <summary>
/// The embedded default: one SQLite file in WAL mode (readers never block the writer), foreign keys on, a busy
/// timeout for concurrent writers. Changes are seen by this process only; several replicas need PostgreSQL.
/// </summary>
public sealed class SqliteTenancyStore(string path) : SqlTenancyStore
{
    private readonly string _connection = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ToString();

    public override string Kind => "sqlite";
    protected override string BinaryType => "BLOB";
    protected override bool IsUniqueViolation(DbException e) => e is SqliteException { SqliteErrorCode: 19 }; // SQLITE_CONSTRAINT

    public override async Task InitializeAsync(CancellationToken cancel = default)
    {
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir != null) Directory.CreateDirectory(dir);
        await using (var c = await OpenAsync(cancel))
            await Exec(c, null, "PRAGMA journal_mode = WAL", cancel);
        await base.InitializeAsync(cancel);
    }

    protected override async Task<DbConnection> OpenAsync(CancellationToken cancel)
    {
        var c = new SqliteConnection(_connection);
        await c.OpenAsync(cancel);
        await Exec(c, null, "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 30000; PRAGMA synchronous = FULL", cancel);
        return c;
    }
}
