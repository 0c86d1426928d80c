using LoPAProxy.Proxy.Store;

namespace LoPAProxy.Proxy.Tenancy;

/// <summary>
/// "name" (the active version) or "name@version", parsed once: both parts are <see cref="Names"/>. The form clients
/// use in "base:name@version" and in the adapter API's paths.
/// </summary>
public readonly record struct AdapterReference(string Name, string? Version)
{
    /// <summary>False for anything that cannot name an adapter (so it answers 404 like an unknown one).</summary>
    public static bool TryParse(string? text, out AdapterReference reference)
    {
        reference = default;
        if (string.IsNullOrEmpty(text)) return false;
        int at = text.IndexOf('@');
        string name = at < 0 ? text : text[..at];
        string? version = at < 0 ? null : text[(at + 1)..];
        if (!Names.IsValid(name) || (version is not null && !Names.IsValid(version))) return false;
        reference = new AdapterReference(name, version);
        return true;
    }

    /// <summary>The adapter part of a model id "base:reference", or null when the id names no adapter.</summary>
    public static string? OfModel(string? model) =>
        model is not null && model.IndexOf(':') is var colon and > 0 && colon < model.Length - 1
            ? model[(colon + 1)..] : null;

    public override string ToString() => Version is null ? Name : $"{Name}@{Version}";
}
