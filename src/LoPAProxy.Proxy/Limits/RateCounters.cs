namespace LoPAProxy.Proxy.Limits;

/// <summary>
/// One tenant's limiter state, wherever it is kept (this process or PostgreSQL). The per-minute limits are GCRA
/// ("generic cell rate algorithm", a token bucket kept as one number): a theoretical arrival time, in Unix seconds,
/// that each admitted unit pushes later by 60 s / limit; a bucket is full when it is not after now.
/// </summary>
public sealed record RateCounters(double RequestsTat, double TokensTat, long BudgetPeriodStart, long BudgetUsed,
    int InFlight)
{
    public static readonly RateCounters Empty = new(0, 0, 0, 0, 0);
}

/// <summary>Why a request was refused.</summary>
public enum Refusal { None, Requests, Tokens, Concurrency, Budget, TooLarge }

/// <summary>What the limits looked like after a decision, for the x-ratelimit-* headers.</summary>
public sealed record RateSnapshot(long RemainingRequests, double ResetRequestsSeconds, long RemainingTokens,
    double ResetTokensSeconds, long BudgetRemaining, DateTimeOffset BudgetResets);

/// <summary>The outcome of one admission: the counters to keep, and what to tell the client.</summary>
public sealed record RateDecision(Refusal Refusal, double RetryAfterSeconds, RateSnapshot Snapshot,
    RateCounters Next)
{
    public bool Admitted => Refusal == Refusal.None;
}
