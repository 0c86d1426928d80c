using LoPAProxy.Proxy.Store;

namespace LoPAProxy.Proxy.Tests.Tenancy;

/// <summary>
/// A real store whose adapter reads can be held open on demand: a read started while <see cref="Hold"/> is set waits
/// for <see cref="Release"/> after reading. That widens the window in which a change can land during a load,
/// deterministically, so the catalog's handling of that race can be tested.
/// </summary>
public sealed class SlowReadStore(ITenancyStore inner) : ITenancyStore
{
    private TaskCompletionSource? _gate;

    public TaskCompletionSource ReadStarted { get; private set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Hold()
    {
        _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        ReadStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public void Release() => Interlocked.Exchange(ref _gate, null)?.TrySetResult();

    public async Task<StoredAdapter?> GetAdapterAsync(string tenant, string name, string? version,
        CancellationToken cancel = default)
    {
        TaskCompletionSource? gate = _gate;
        StoredAdapter? result = await inner.GetAdapterAsync(tenant, name, version, cancel);
        if (gate is not null)
        {
            ReadStarted.TrySetResult();
            await gate.Task;
        }
        return result;
    }

    public string Kind => inner.Kind;

    public event Action<string, string?>? Changed
    {
        add => inner.Changed += value;
        remove => inner.Changed -= value;
    }

    public Task InitializeAsync(CancellationToken cancel = default) => inner.InitializeAsync(cancel);
    public Task PingAsync(CancellationToken cancel = default) => inner.PingAsync(cancel);
    public Task CreateTenantAsync(string name, CancellationToken cancel = default) => inner.CreateTenantAsync(name,
        cancel);
    public Task<IReadOnlyList<TenantRecord>> ListTenantsAsync(CancellationToken cancel = default) =>
        inner.ListTenantsAsync(cancel);
    public Task<TenantRecord?> GetTenantAsync(string name, CancellationToken cancel = default) =>
        inner.GetTenantAsync(name, cancel);

    public Task SetTenantDisabledAsync(string name, bool disabled, CancellationToken cancel = default) =>
        inner.SetTenantDisabledAsync(name, disabled, cancel);

    public Task<KeyRecord> AddKeyAsync(string tenant, byte[] keyHash, CancellationToken cancel = default) =>
        inner.AddKeyAsync(tenant, keyHash, cancel);

    public Task<IReadOnlyList<KeyRecord>> ListKeysAsync(string tenant, CancellationToken cancel = default) =>
        inner.ListKeysAsync(tenant, cancel);

    public Task<bool> RevokeKeyAsync(string tenant, string keyId, CancellationToken cancel = default) =>
        inner.RevokeKeyAsync(tenant, keyId, cancel);

    public Task<string?> FindTenantByKeyHashAsync(byte[] keyHash, CancellationToken cancel = default) =>
        inner.FindTenantByKeyHashAsync(keyHash, cancel);

    public Task<AdapterVersionInfo> PutAdapterAsync(string tenant, string name, string version, string configJson,
        byte[] weights,
        long parameters, bool activate, AdapterQuota? quota = null, CancellationToken cancel = default) =>
        inner.PutAdapterAsync(tenant, name, version, configJson, weights, parameters, activate, quota, cancel);

    public Task<IReadOnlyList<AdapterVersionInfo>> ListAdaptersAsync(string tenant,
        CancellationToken cancel = default) =>
        inner.ListAdaptersAsync(tenant, cancel);

    public Task<string?> ResolveVersionAsync(string tenant, string name, string? version,
        CancellationToken cancel = default) =>
        inner.ResolveVersionAsync(tenant, name, version, cancel);

    public Task<bool> DeleteAdapterAsync(string tenant, string name, string? version,
        CancellationToken cancel = default) =>
        inner.DeleteAdapterAsync(tenant, name, version, cancel);

    public Task<bool> ActivateAsync(string tenant, string name, string version, CancellationToken cancel = default) =>
        inner.ActivateAsync(tenant, name, version, cancel);

    public Task<(int Count, long Bytes)> UsageAsync(string tenant, CancellationToken cancel = default) =>
        inner.UsageAsync(tenant, cancel);

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
