namespace LoPAProxy.Proxy.Store;

public sealed record TenantRecord(string Name, bool Disabled, DateTimeOffset Created);

public sealed record KeyRecord(string Id, string Tenant, DateTimeOffset Created, bool Revoked);

/// <summary>One immutable adapter version; <see cref="Active"/> marks the version "name" alone resolves to.</summary>
public sealed record AdapterVersionInfo(string Tenant, string Name, string Version, string Sha256, long Parameters,
    long SizeBytes, DateTimeOffset Created, bool Active);

public sealed record StoredAdapter(AdapterVersionInfo Info, string ConfigJson, byte[] Weights);

/// <summary>Per-tenant limits a write must stay within, checked inside its transaction.</summary>
public sealed record AdapterQuota(int MaxAdapters, long MaxBytes);
