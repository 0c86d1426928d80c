namespace LoPAProxy.Proxy.Store;

/// <summary>
/// Usage of one tenant's adapter ("" for requests without one) in one hour starting at <see cref="HourStart"/>
/// (Unix seconds). Tokens are what the backend reported (prompt tokens include the soft prompt's rows, which sit in
/// the prompt); requests refused by a limit count in <see cref="RateLimited"/> only. <see cref="LatencyMs"/> sums
/// the counted requests' durations, arrival to the end of the answer.
/// </summary>
public sealed record UsageCounts(string Tenant, string Adapter, long HourStart, long Requests, long Errors,
    long RateLimited, long PromptTokens, long CompletionTokens, long SoftPromptRows, long LatencyMs = 0)
{
    public long Tokens => PromptTokens + CompletionTokens;

    public UsageCounts Plus(UsageCounts o) => this with
    {
        Requests = Requests + o.Requests,
        Errors = Errors + o.Errors,
        RateLimited = RateLimited + o.RateLimited,
        PromptTokens = PromptTokens + o.PromptTokens,
        CompletionTokens = CompletionTokens + o.CompletionTokens,
        SoftPromptRows = SoftPromptRows + o.SoftPromptRows,
        LatencyMs = LatencyMs + o.LatencyMs,
    };
}

/// <summary>Usage aggregates and per-tenant limit overrides, in the same database as tenants and adapters.</summary>
public interface IUsageStore
{
    /// <summary>Adds each delta to its (tenant, adapter, hour) bucket, all in one transaction.</summary>
    Task AddUsageAsync(IReadOnlyCollection<UsageCounts> deltas, CancellationToken cancel = default);

    /// <summary>Buckets with from ≤ hour start &lt; to, of one tenant or (null) of all.</summary>
    Task<IReadOnlyList<UsageCounts>> ReadUsageAsync(string? tenant, long from, long to,
        CancellationToken cancel = default);

    /// <summary>A tenant's overrides, or null when it has none.</summary>
    Task<TenantLimitOverrides?> GetLimitsAsync(string tenant, CancellationToken cancel = default);

    /// <summary>Replaces a tenant's overrides (null removes them); announced like every tenant change.</summary>
    /// <exception cref="StoreNotFoundException">no such tenant.</exception>
    Task SetLimitsAsync(string tenant, TenantLimitOverrides? limits, CancellationToken cancel = default);
}
