using System.Collections.Concurrent;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Proxy.Configuration;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Tenancy;

/// <summary>Encoders by name, loaded once (the configured ones at start-up, others on first use).</summary>
public sealed class EncoderPool(IOptions<LoPAOptions> options)
{
    private readonly ConcurrentDictionary<string, Lazy<IInstanceEncoder>> _encoders = new(StringComparer.Ordinal);

    public IInstanceEncoder Get(string name) =>
        _encoders.GetOrAdd(name, n => new Lazy<IInstanceEncoder>(() => EncoderFactory.Create(n, options.Value.ToEncoderOptions()))).Value;

    /// <summary>Loads the configured encoders; true when all loaded.</summary>
    public bool Preload(Action<string, Exception> onError)
    {
        bool ok = true;
        foreach (string name in options.Value.Encoders)
        {
            try { Get(name); }
            catch (Exception e) { _encoders.TryRemove(name, out _); onError(name, e); ok = false; }
        }
        return ok;
    }

    public bool AllLoaded => options.Value.Encoders.All(n => _encoders.TryGetValue(n, out var l) && l.IsValueCreated);
}
