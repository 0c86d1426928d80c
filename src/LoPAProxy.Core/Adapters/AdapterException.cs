namespace LoPAProxy.Core.Adapters;

/// <summary>An adapter is malformed, inconsistent, oversize or unsupported. The message says what and where.</summary>
public sealed class AdapterException(string message, Exception? inner = null) : Exception(message, inner);
