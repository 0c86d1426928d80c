namespace LoPAProxy.Proxy.Configuration;

/// <summary>
/// LoPA:RateLimits — every tenant's default limits (0: none), where the counters live, and what happens when that
/// place is unreachable. Per-tenant overrides are set through the admin API (PUT /admin/tenants/{tenant}/limits).
/// </summary>
public sealed class RateLimitOptions
{
    /// <summary>Requests per minute, every proxied request counted (a burst of the whole minute is allowed).</summary>
    public long RequestsPerMinute { get; set; }
    /// <summary>Prompt + completion tokens per minute; the soft prompt's m rows count as prompt tokens.</summary>
    public long TokensPerMinute { get; set; }
    /// <summary>Requests in flight at once (a stream counts until its last byte).</summary>
    public int ConcurrentRequests { get; set; }
    /// <summary>Prompt + completion tokens per <see cref="BudgetPeriod"/>.</summary>
    public long TokenBudget { get; set; }
    /// <summary>hour | day | week | month: calendar periods in UTC (weeks start on Monday).</summary>
    public string BudgetPeriod { get; set; } = "month";
    /// <summary>Completion tokens reserved for a request that sets no max_tokens, until its usage is known.</summary>
    public int CompletionTokensWhenUnset { get; set; } = 256;
    /// <summary>
    /// Where the counters live: "local" (this process), "postgres" (shared by every replica), or "auto" — postgres
    /// when LoPA:Store:Kind is postgres, else local.
    /// </summary>
    public CountersKind Counters { get; set; } = CountersKind.Auto;
    /// <summary>The counters' PostgreSQL database; unset: the store's (LoPA:Store:ConnectionString).</summary>
    public string? ConnectionString { get; set; }
    /// <summary>
    /// When the shared counters cannot be reached: "open" admits the request uncounted, "closed" refuses it with
    /// 503. Either way it is logged (at most every 30 s) and counted in lopa_ratelimit_store_errors_total.
    /// </summary>
    public CountersDownPolicy WhenCountersDown { get; set; } = CountersDownPolicy.Open;
    /// <summary>
    /// How long one admission by the shared counters may take — waiting behind the same tenant's other admissions
    /// included — before the counters count as down.
    /// </summary>
    public int CountersTimeoutMs { get; set; } = 5000;
    /// <summary>
    /// Connections each replica opens to the shared counters at most (admissions of one tenant run one at a time
    /// anyway); waiting for one counts towards <see cref="CountersTimeoutMs"/>.
    /// </summary>
    public int MaxConnections { get; set; } = 8;
    /// <summary>A concurrency slot held by a replica that died is freed after this long (live ones renew).</summary>
    public int LeaseSeconds { get; set; } = 60;

    /// <summary>The counters in effect: local or postgres.</summary>
    public CountersKind EffectiveCounters(StoreOptions store) => Counters == CountersKind.Auto
        ? (store.Kind == StoreKind.Postgres ? CountersKind.Postgres : CountersKind.Local) : Counters;
}
