using System.Diagnostics;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Generation;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Store;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Tenancy;

/// <summary>
/// A tenant's adapters, from the store, loaded on first use and kept in a bounded least-recently-used cache. Another
/// tenant's adapter is simply not found: every lookup starts at the caller's tenant.
///
/// Freshness ("acknowledged means served"): the store raises Changed after every committed write, before the write
/// is acknowledged, and that evicts the name here. A load that was already under way when a change came in could
/// carry the old version; every change bumps a generation counter, and a load is cached only if no change arrived
/// while it ran — so on this replica every request after an acknowledgement sees it. Other replicas hear of changes
/// through the store (PostgreSQL NOTIFY, milliseconds); in case a notification is lost (a dropped LISTEN connection,
/// several processes on one SQLite file), a cached entry older than Adapters:RevalidateSeconds is checked against
/// the store with a light query before use. That is the documented bound for other replicas. While the store is
/// down, cached adapters are served as they are; a miss is a 503 (<see cref="Store.StoreOutage"/>).
/// </summary>
public sealed class AdapterCatalog
{
    private sealed record Entry(string Key, SoftPromptGenerator Generator, string Version, long CheckedAt);

    private readonly IOptions<LoPAOptions> _options;
    private readonly Store.ITenancyStore _store;
    private readonly object _gate = new();
    private readonly LinkedList<Entry> _lru = new();
    private readonly Dictionary<string, LinkedListNode<Entry>> _index = new(StringComparer.Ordinal);
    private readonly Store.StoreOutage? _outage;
    private long _generation;

    public AdapterCatalog(IOptions<LoPAOptions> options, Store.ITenancyStore store, Store.StoreOutage? outage = null)
    {
        _options = options;
        _store = store;
        _outage = outage;
        // Any change to tenant/name (here or, with PostgreSQL, on another replica) drops its cached versions.
        store.Changed += (tenant, name) => Evict(tenant, name);
    }

    public int Count
    {
        get
        {
            lock (_gate) return _lru.Count;
        }
    }

    /// <summary>
    /// The generator for tenant and "name" (its active version) or "name@version". Null when the tenant has no such
    /// adapter.
    /// </summary>
    /// <exception cref="AdapterException">the adapter exists but is broken.</exception>
    public async Task<SoftPromptGenerator?> FindAsync(string tenant, string reference, CancellationToken cancel)
    {
        if (!Names.IsValid(tenant) || !AdapterReference.TryParse(reference, out AdapterReference parsed)) return null;
        (string name, string? version) = parsed;
        string key = $"{tenant}/{name}@{version}";
        long generation;
        Entry? cached;
        lock (_gate)
        {
            generation = _generation;
            cached = Touch(key);
        }
        if (cached is not null && await IsCurrentAsync(cached, tenant, name, version, cancel))
        {
            Observability.ProxyTelemetry.AdapterCacheHits.Add(1);
            return cached.Generator;
        }
        Observability.ProxyTelemetry.AdapterCacheMisses.Add(1);
        long started = Stopwatch.GetTimestamp();
        Store.StoredAdapter? stored = await _store.GetAdapterAsync(tenant, name, version, cancel);
        Observability.ProxyTelemetry.StoreDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
        if (stored is null) return null;
        string label = $"{tenant}/{name}@{stored.Info.Version}";
        var generator = new SoftPromptGenerator(LopaAdapter.FromParts(stored.ConfigJson, stored.Weights, label));
        Remember(new Entry(key, generator, stored.Info.Version, Stopwatch.GetTimestamp()), generation);
        return generator;
    }

    /// <summary>
    /// The references the tenant may call: every name with an active version, and every name@version.
    /// </summary>
    public async Task<IReadOnlyList<(string Reference, DateTimeOffset Created)>> ListAsync(string tenant,
        CancellationToken cancel)
    {
        if (!Names.IsValid(tenant)) return [];
        var versions = await _store.ListAdaptersAsync(tenant, cancel);
        return versions.Where(v => v.Active).Select(v => (v.Name, v.Created))
            .Concat(versions.Select(v => ($"{v.Name}@{v.Version}", v.Created))).ToList();
    }

    /// <summary>Fresh enough, or still what the store resolves the reference to (then it counts as checked
    /// now).</summary>
    private async Task<bool> IsCurrentAsync(Entry entry, string tenant, string name, string? version,
        CancellationToken cancel)
    {
        double age = Stopwatch.GetElapsedTime(entry.CheckedAt).TotalSeconds;
        if (age < _options.Value.Adapters.RevalidateSeconds || _outage?.SkipStore == true) return true;
        string? current;
        try
        {
            current = await _store.ResolveVersionAsync(tenant, name, version, cancel);
        }
        catch (Exception e) when (Store.StoreOutage.Is(e) && !cancel.IsCancellationRequested)
        {
            _outage?.Report(e);
            return true; // the store is down: serve what is cached (nothing can change it meanwhile)
        }
        if (current != entry.Version) return false;
        lock (_gate)
        {
            if (_index.TryGetValue(entry.Key, out var node) && ReferenceEquals(node.Value, entry))
                node.Value = entry with { CheckedAt = Stopwatch.GetTimestamp() };
        }
        return true;
    }

    /// <summary>Moves a cached entry to the front and returns it (call under the gate).</summary>
    private Entry? Touch(string key)
    {
        if (!_index.TryGetValue(key, out var node)) return null;
        _lru.Remove(node);
        _lru.AddFirst(node);
        return node.Value;
    }

    /// <summary>Caches an entry unless a change arrived since <paramref name="generation"/> was read.</summary>
    private void Remember(Entry entry, long generation)
    {
        lock (_gate)
        {
            if (generation != _generation) return; // loaded across a change: serve it once, never cache it
            if (_index.Remove(entry.Key, out var stale)) _lru.Remove(stale);
            _index[entry.Key] = _lru.AddFirst(entry);
            while (_lru.Count > _options.Value.Adapters.CacheSize)
            {
                _index.Remove(_lru.Last!.Value.Key);
                _lru.RemoveLast();
            }
        }
    }

    /// <summary>Drops tenant/name in every version (or all of the tenant's adapters when name is null).</summary>
    private void Evict(string tenant, string? name)
    {
        string prefix = name is null ? tenant + "/" : tenant + "/" + name + "@";
        lock (_gate)
        {
            _generation++;
            foreach (string key in _index.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList())
            {
                _lru.Remove(_index[key]);
                _index.Remove(key);
            }
        }
    }
}
