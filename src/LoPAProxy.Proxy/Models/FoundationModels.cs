using System.Collections.Concurrent;

namespace LoPAProxy.Proxy.Models;

/// <summary>Foundation models by path, each loaded once: the configured clusters' at start-up
/// (<see cref="Hosting.StartupWork"/>), any other on first use.</summary>
public sealed class FoundationModels
{
    private readonly ConcurrentDictionary<string, Lazy<FoundationModel>> _models = new(StringComparer.Ordinal);

    public FoundationModel Get(string path) =>
        _models.GetOrAdd(path, p => new Lazy<FoundationModel>(() => FoundationModel.Load(p))).Value;

    /// <summary>The paths whose model is loaded.</summary>
    public IReadOnlyList<string> Loaded => _models.Where(m => m.Value.IsValueCreated).Select(m => m.Key).ToList();
}
