using System.Data.Common;

namespace LoPAProxy.Proxy.Store;

/// <summary>Tenants' files: one row each, the bytes in a BLOB/BYTEA column (fine-tuning files are megabytes).
/// </summary>
public abstract partial class SqlTenancyStore : IFileStore
{
    private string[] FilesSchema() =>
    [
        "CREATE TABLE IF NOT EXISTS files (id TEXT PRIMARY KEY, tenant TEXT NOT NULL REFERENCES tenants(name), " +
        $"filename TEXT NOT NULL, purpose TEXT NOT NULL, bytes BIGINT NOT NULL, content {BinaryType} NOT NULL, " +
        "created TEXT NOT NULL, format TEXT NOT NULL, examples BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS files_by_tenant ON files (tenant, created)",
    ];

    private const string FileColumns =
        "SELECT id, tenant, filename, purpose, bytes, created, format, examples FROM files";

    public async Task PutFileAsync(StoredFileInfo file, byte[] content, long maxBytesPerTenant,
        CancellationToken cancel = default)
    {
        await Write(file.Tenant, null, async (c, t) =>
        {
            await LockTenantAsync(c, t, file.Tenant, cancel);
            await RequireTenant(c, t, file.Tenant, cancel);
            long used = await Scalar(c, t, "SELECT COALESCE(SUM(bytes), 0) FROM files WHERE tenant = @t", cancel,
                ("t", file.Tenant)) ?? 0;
            if (used + content.Length > maxBytesPerTenant)
            {
                throw new StoreQuotaException($"quota: at most {maxBytesPerTenant} bytes of files per tenant (now " +
                    $"{used}; this file {content.Length})");
            }
            await Exec(c, t, "INSERT INTO files (id, tenant, filename, purpose, bytes, content, created, format, " +
                "examples) VALUES (@i, @t, @f, @p, @b, @c, @d, @m, @e)", cancel, ("i", file.Id), ("t", file.Tenant),
                ("f", file.FileName), ("p", file.Purpose), ("b", (long)content.Length), ("c", content),
                ("d", Stamp(file.Created)), ("m", file.Format), ("e", (long)file.Examples));
        }, cancel, announce: false);
    }

    public async Task<IReadOnlyList<StoredFileInfo>> ListFilesAsync(string tenant,
        CancellationToken cancel = default) =>
        await Query(FileColumns + " WHERE tenant = @t ORDER BY created DESC, id", FileInfo, cancel, ("t", tenant));

    public async Task<StoredFileInfo?> GetFileAsync(string tenant, string id, CancellationToken cancel = default) =>
        (await Query(FileColumns + " WHERE tenant = @t AND id = @i", FileInfo, cancel, ("t", tenant), ("i", id)))
            .FirstOrDefault();

    public async Task<byte[]?> ReadFileContentAsync(string tenant, string id, CancellationToken cancel = default) =>
        (await Query("SELECT content FROM files WHERE tenant = @t AND id = @i", r => (byte[])r[0], cancel,
            ("t", tenant), ("i", id))).FirstOrDefault();

    public async Task<bool> DeleteFileAsync(string tenant, string id, CancellationToken cancel = default)
    {
        int deleted = 0;
        await Write(tenant, null, async (c, t) =>
        {
            deleted = await Exec(c, t, "DELETE FROM files WHERE tenant = @t AND id = @i", cancel, ("t", tenant),
                ("i", id));
        }, cancel, announce: false);
        return deleted > 0;
    }

    private static StoredFileInfo FileInfo(DbDataReader r) =>
        new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetInt64(4), Time(r.GetString(5)),
            r.GetString(6), (int)r.GetInt64(7));
}
