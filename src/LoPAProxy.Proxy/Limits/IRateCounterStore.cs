namespace LoPAProxy.Proxy.Limits;

/// <summary>An admitted request's claim on its tenant's counters, returned when its answer has ended.</summary>
public sealed record RateTicket(string Tenant, string Lease, TenantLimits Limits, long ReservedTokens,
    long BudgetPeriodStart);

/// <summary>Tokens a tenant has used since a time, from the durable usage aggregates (a new budget
/// period).</summary>
public delegate Task<long> UsedTokensSince(string tenant, DateTimeOffset since, CancellationToken cancel);

/// <summary>
/// Where limiter counters live. Every decision is <see cref="Admission"/>'s arithmetic, run while the tenant's
/// counters are locked — by a lock in this process, or by PostgreSQL for every replica at once.
/// </summary>
public interface IRateCounterStore
{
    /// <summary>"local" or "postgres".</summary>
    string Kind { get; }

    /// <summary>
    /// Gets ready before the first request (schema, a first connection, the code paths compiled), so a burst
    /// arriving at a cold replica is not mistaken for an outage.
    /// </summary>
    Task PrepareAsync(CancellationToken cancel);

    /// <summary>Admits or refuses; an admitted request holds a concurrency slot under
    /// <paramref name="lease"/>.</summary>
    Task<RateDecision> AdmitAsync(string tenant, TenantLimits limits, long tokens, string lease,
        CancellationToken cancel);

    /// <summary>Replaces the ticket's reserved tokens with <paramref name="usedTokens"/> and frees its slot.</summary>
    Task SettleAsync(RateTicket ticket, long usedTokens, CancellationToken cancel);
}
