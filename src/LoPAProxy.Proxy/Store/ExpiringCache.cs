using System.Collections.Concurrent;

namespace LoPAProxy.Proxy.Store;

/// <summary>
/// A bounded cache whose entries are fresh for a while and then stale: a stale entry is not used while the source
/// answers, but may be while it does not (a store outage). Entries are dropped by key or by predicate when the
/// source reports a change. Past its capacity the oldest half is dropped.
/// </summary>
public sealed class ExpiringCache<TKey, TValue>(int capacity, TimeSpan freshFor, TimeProvider clock)
    where TKey : notnull
{
    private readonly ConcurrentDictionary<TKey, (TValue Value, DateTimeOffset Stored)> _entries = new();

    public int Count => _entries.Count;

    /// <summary>A fresh entry.</summary>
    public bool TryGetFresh(TKey key, out TValue value) => TryGet(key, fresh: true, out value);

    /// <summary>Any entry, fresh or stale (for when the source is down).</summary>
    public bool TryGetAny(TKey key, out TValue value) => TryGet(key, fresh: false, out value);

    public void Set(TKey key, TValue value)
    {
        if (_entries.Count >= capacity) Trim();
        _entries[key] = (value, clock.GetUtcNow());
    }

    public void Remove(TKey key) => _entries.TryRemove(key, out _);

    public void RemoveWhere(Func<TKey, TValue, bool> match)
    {
        foreach (var (key, entry) in _entries)
            if (match(key, entry.Value)) _entries.TryRemove(key, out _);
    }

    private bool TryGet(TKey key, bool fresh, out TValue value)
    {
        if (_entries.TryGetValue(key, out var entry) && (!fresh || clock.GetUtcNow() - entry.Stored < freshFor))
        {
            value = entry.Value;
            return true;
        }
        value = default!;
        return false;
    }

    private void Trim()
    {
        var oldest = _entries.OrderBy(e => e.Value.Stored).Take(Math.Max(1, _entries.Count / 2)).ToList();
        foreach (var (key, _) in oldest) _entries.TryRemove(key, out _);
    }
}
