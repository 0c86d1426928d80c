namespace LoPAProxy.Proxy.Store;

/// <summary>The store cannot be reached or opened (callers answer 503 store_unavailable with Retry-After).</summary>
public sealed class StoreUnavailableException(string message, Exception? inner = null) : IOException(message, inner);
