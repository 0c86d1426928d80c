namespace LoPAProxy.Proxy.Store;

/// <summary>A tenant's uploaded file (OpenAI's file object), without its bytes.</summary>
public sealed record StoredFileInfo(string Id, string Tenant, string FileName, string Purpose, long Bytes,
    DateTimeOffset Created, string Format, int Examples);

/// <summary>
/// Tenants' files (fine-tuning data) in the store, beside their adapters: per tenant, immutable, deleted on request.
/// Every method is scoped by tenant; another tenant's file is indistinguishable from a missing one.
/// </summary>
public interface IFileStore
{
    /// <summary>Stores a file; the tenant's total is checked in the same transaction as the insert.</summary>
    /// <exception cref="StoreQuotaException">the tenant's files would exceed <paramref name="maxBytesPerTenant"/>.
    /// </exception>
    Task PutFileAsync(StoredFileInfo file, byte[] content, long maxBytesPerTenant, CancellationToken cancel = default);

    /// <summary>Newest first.</summary>
    Task<IReadOnlyList<StoredFileInfo>> ListFilesAsync(string tenant, CancellationToken cancel = default);
    Task<StoredFileInfo?> GetFileAsync(string tenant, string id, CancellationToken cancel = default);
    Task<byte[]?> ReadFileContentAsync(string tenant, string id, CancellationToken cancel = default);
    Task<bool> DeleteFileAsync(string tenant, string id, CancellationToken cancel = default);
}
