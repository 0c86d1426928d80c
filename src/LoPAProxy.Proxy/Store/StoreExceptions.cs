namespace LoPAProxy.Proxy.Store;

/// <summary>The thing asked for does not exist (callers answer 404).</summary>
public sealed class StoreNotFoundException(string message) : Exception(message);

/// <summary>The write would take the tenant over a quota (callers answer 429).</summary>
public sealed class StoreQuotaException(string message) : Exception(message);

/// <summary>The thing to create exists already (callers answer 409).</summary>
public sealed class StoreConflictException(string message) : Exception(message);
