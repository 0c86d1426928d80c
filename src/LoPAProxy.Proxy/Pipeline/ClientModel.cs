namespace LoPAProxy.Proxy.Pipeline;

/// <summary>The model name the client asked for ("base:adapter"), when the rewrite replaced it with the
/// backend's.</summary>
public sealed record ClientModel(string Name);
