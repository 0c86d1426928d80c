using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Generation;
using LoPAProxy.Proxy.Configuration;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Tenancy;

/// <summary>
/// A tenant's adapters — from the store when one is configured, else from the per-tenant directory layout
/// {root}/{tenant}/{adapter}/ — loaded on first use and kept in a bounded least-recently-used cache. Store entries
/// are evicted when the store reports a change; directory entries are reloaded when their files' write times change.
/// Another tenant's adapter is simply not found: every lookup starts at the caller's tenant.
/// </summary>
public sealed class AdapterCatalog
{
    private readonly IOptions<LoPAOptions> options;
    private readonly Store.IAdapterStore? _store;

    public AdapterCatalog(IOptions<LoPAOptions> options, Store.IAdapterStore? store = null)
    {
        this.options = options;
        _store = store;
        // Any change to tenant/name (here or, with PostgreSQL, on another replica) drops its cached versions.
        if (store != null) store.Changed += (tenant, name) => Evict(tenant + "/" + (name ?? ""));
    }

    private void Evict(string prefix)
    {
        lock (_gate)
            foreach (string key in _index.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal) && (prefix.EndsWith('/') || k.Length == prefix.Length || k[prefix.Length] == '@')).ToList())
            {
                _lru.Remove(_index[key]);
                _index.Remove(key);
            }
    }

    /// <summary>
    /// The generator for tenant and "name" or "name@version": from the store when one is configured (versions,
    /// active version), else from the directory layout. Null when the tenant has no such adapter.
    /// </summary>
    public async Task<SoftPromptGenerator?> FindAsync(string tenant, string reference, CancellationToken cancel)
    {
        if (_store is null) return Find(tenant, reference);
        int at = reference.IndexOf('@');
        string name = at < 0 ? reference : reference[..at];
        string? version = at < 0 ? null : reference[(at + 1)..];
        if (!Names.IsValid(tenant) || !Names.IsValid(name) || (version != null && !Names.IsValid(version))) return null;
        string key = $"{tenant}/{name}@{version}";
        lock (_gate)
            if (_index.TryGetValue(key, out var node)) { _lru.Remove(node); _lru.AddFirst(node); return node.Value.Generator; }
        Store.StoredAdapter? stored = await _store.GetAdapterAsync(tenant, name, version, cancel);
        if (stored is null) return null;
        var generator = new SoftPromptGenerator(LopaAdapter.FromParts(stored.ConfigJson, stored.Weights, $"{tenant}/{name}@{stored.Info.Version}"));
        Remember(key, DateTime.MinValue, generator);
        return generator;
    }
    private readonly object _gate = new();

    private readonly LinkedList<(string Key, DateTime Stamp, SoftPromptGenerator Generator)> _lru = new();
    private readonly Dictionary<string, LinkedListNode<(string Key, DateTime Stamp, SoftPromptGenerator Generator)>> _index = new(StringComparer.Ordinal);

    public int Count { get { lock (_gate) return _lru.Count; } }

    /// <summary>The generator for tenant/adapter, or null when the tenant has no such adapter.</summary>
    /// <exception cref="AdapterException">the adapter exists but is broken.</exception>
    public SoftPromptGenerator? Find(string tenant, string adapter)
    {
        if (!Names.IsValid(tenant) || !Names.IsValid(adapter)) return null;
        string dir = Path.Combine(options.Value.Adapters.Directory, tenant, adapter);
        string config = Path.Combine(dir, LopaAdapter.ConfigFile), weights = Path.Combine(dir, LopaAdapter.WeightsFile);
        if (!File.Exists(config) || !File.Exists(weights)) return null;
        DateTime stamp = new[] { File.GetLastWriteTimeUtc(config), File.GetLastWriteTimeUtc(weights) }.Max();
        string key = tenant + "/" + adapter;
        lock (_gate)
        {
            if (_index.TryGetValue(key, out var node) && node.Value.Stamp == stamp)
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                return node.Value.Generator;
            }
        }
        var generator = new SoftPromptGenerator(LopaAdapter.Load(dir));
        Remember(key, stamp, generator);
        return generator;
    }

    private void Remember(string key, DateTime stamp, SoftPromptGenerator generator)
    {
        lock (_gate)
        {
            if (_index.Remove(key, out var stale)) _lru.Remove(stale);
            _index[key] = _lru.AddFirst((key, stamp, generator));
            while (_lru.Count > options.Value.Adapters.CacheSize)
            {
                _index.Remove(_lru.Last!.Value.Key);
                _lru.RemoveLast();
            }
        }
    }
}
