using System.Collections.Concurrent;

namespace LoPAProxy.Proxy.Models;

/// <summary>Foundation models by path, each loaded once on first use.</summary>
public sealed class FoundationModels
{
    private readonly ConcurrentDictionary<string, Lazy<FoundationModel>> _models = new(StringComparer.Ordinal);

    public FoundationModel Get(string path) =>
        _models.GetOrAdd(path, p => new Lazy<FoundationModel>(() => FoundationModel.Load(p))).Value;
}
