namespace LoPAProxy.Proxy.Dialects;

/// <summary>The registered dialects' names and needs, for start-up validation and error messages.</summary>
public sealed class DialectCatalog
{
    private readonly Dictionary<string, bool> _needsModel = new(StringComparer.Ordinal);

    public IReadOnlyCollection<string> Names => _needsModel.Keys;

    public bool IsKnown(string name) => _needsModel.ContainsKey(name);

    public bool NeedsModel(string name) => _needsModel.GetValueOrDefault(name);

    internal void Add(string name, bool needsModel) => _needsModel[name] = needsModel;
}
