namespace LoPAProxy.Proxy.Limits;

/// <summary>
/// The limiter's arithmetic, one pure function per step, used unchanged by every counter store: a request is
/// admitted only if every limit admits it, and then all its counters move together (or none do).
/// Per-minute limits: GCRA with a burst of the whole minute (limit L: interval T = 60/L s, tolerance τ = 60 s).
/// A unit costs T: new TAT = max(TAT, now) + cost·T, admitted iff new TAT − now ≤ τ;
/// remaining = ⌊(now + τ − TAT)/T⌋; reset (back to full) = TAT − now; retry after = new TAT − τ − now.
/// </summary>
public static class Admission
{
    private const double Window = 60;
    /// <summary>
    /// Slack for floating-point rounding: times are Unix seconds (~1.8e9), where a double resolves ~0.24 µs; one
    /// microsecond of slack, and 1e-4 of a unit when counting what remains.
    /// </summary>
    private const double Epsilon = 1e-6, UnitEpsilon = 1e-4;

    /// <param name="tokens">The tokens reserved for the request (prompt, soft prompt, asked-for completion).</param>
    public static RateDecision Decide(TenantLimits limits, RateCounters counters, long tokens, double now)
    {
        RateCounters c = InPeriod(limits, counters, now);
        double requestsTat = Next(c.RequestsTat, 1, limits.RequestsPerMinute, now);
        double tokensTat = Next(c.TokensTat, tokens, limits.TokensPerMinute, now);
        long budgetUsed = c.BudgetUsed + tokens;
        Refusal refusal = Refusal.None;
        double retryAfter = 0;
        if ((limits.TokensPerMinute > 0 && tokens > limits.TokensPerMinute)
            || (limits.TokenBudget > 0 && tokens > limits.TokenBudget))
        {
            refusal = Refusal.TooLarge;
        }
        else if (limits.TokenBudget > 0 && budgetUsed > limits.TokenBudget)
        {
            refusal = Refusal.Budget;
            retryAfter = BudgetEnd(limits, now) - now;
        }
        else if (limits.ConcurrentRequests > 0 && c.InFlight >= limits.ConcurrentRequests)
        {
            refusal = Refusal.Concurrency;
            retryAfter = 1;
        }
        else if (Over(requestsTat, limits.RequestsPerMinute, now) || Over(tokensTat, limits.TokensPerMinute, now))
        {
            refusal = Over(requestsTat, limits.RequestsPerMinute, now) ? Refusal.Requests : Refusal.Tokens;
            retryAfter = Math.Max(Wait(requestsTat, limits.RequestsPerMinute, now),
                Wait(tokensTat, limits.TokensPerMinute, now));
        }
        RateCounters next = refusal != Refusal.None ? c : c with
        {
            RequestsTat = limits.RequestsPerMinute > 0 ? requestsTat : c.RequestsTat,
            TokensTat = limits.TokensPerMinute > 0 ? tokensTat : c.TokensTat,
            BudgetUsed = limits.TokenBudget > 0 ? budgetUsed : c.BudgetUsed,
            InFlight = c.InFlight + 1,
        };
        return new RateDecision(refusal, retryAfter, Snapshot(limits, next, now), next);
    }

    /// <summary>
    /// After the answer: the request's reserved tokens are replaced by what it used (from the backend's usage), in
    /// the token bucket and in the budget of the period it was admitted in, and its concurrency slot is freed.
    /// </summary>
    public static RateCounters Settle(TenantLimits limits, RateCounters counters, long reserved, long used,
        long admittedPeriodStart, double now)
    {
        long delta = used - reserved;
        double tokensTat = ShiftTokens(counters.TokensTat, TokensShift(limits, delta), now);
        long budgetUsed = counters.BudgetUsed;
        if (counters.BudgetPeriodStart == admittedPeriodStart) budgetUsed = Math.Max(0, budgetUsed + delta);
        return counters with
        {
            TokensTat = tokensTat,
            BudgetUsed = budgetUsed,
            InFlight = Math.Max(0, counters.InFlight - 1),
        };
    }

    /// <summary>How far <paramref name="delta"/> more (negative: fewer) tokens move the token bucket's
    /// TAT.</summary>
    public static double TokensShift(TenantLimits limits, long delta) =>
        limits.TokensPerMinute > 0 ? delta * Window / limits.TokensPerMinute : 0;

    /// <summary>
    /// A settled difference applied to the TAT: a charge starts from now at the earliest (like an admission); a
    /// refund never fills the bucket past full. (PostgresRateCounters applies the same two lines in SQL.)
    /// </summary>
    public static double ShiftTokens(double tat, double shift, double now) =>
        shift >= 0 ? Math.Max(tat, now) + shift : Math.Max(tat + shift, now);

    /// <summary>The counters with the budget moved into the current period (used from zero) when it began.</summary>
    public static RateCounters InPeriod(TenantLimits limits, RateCounters counters, double now)
    {
        long start = PeriodStart(limits, now);
        return counters.BudgetPeriodStart == start ? counters : counters with
        {
            BudgetPeriodStart = start,
            BudgetUsed = 0,
        };
    }

    public static long PeriodStart(TenantLimits limits, double now) =>
        limits.BudgetPeriod.Start(Time(now)).ToUnixTimeSeconds();

    public static RateSnapshot Snapshot(TenantLimits limits, RateCounters c, double now) => new(
        Remaining(c.RequestsTat, limits.RequestsPerMinute, now), Math.Max(0, c.RequestsTat - now),
        Remaining(c.TokensTat, limits.TokensPerMinute, now), Math.Max(0, c.TokensTat - now),
        limits.TokenBudget > 0 ? Math.Max(0, limits.TokenBudget - c.BudgetUsed) : 0,
        limits.BudgetPeriod.End(Time(now)));

    public static double Seconds(DateTimeOffset time) => time.ToUnixTimeMilliseconds() / 1000.0;

    private static DateTimeOffset Time(double seconds) =>
        DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Floor(seconds * 1000));

    private static double BudgetEnd(TenantLimits limits, double now) => Seconds(limits.BudgetPeriod.End(Time(now)));

    private static double Next(double tat, long cost, long limit, double now) =>
        limit <= 0 ? tat : Math.Max(tat, now) + cost * Window / limit;

    private static bool Over(double newTat, long limit, double now) => limit > 0 && newTat - now > Window + Epsilon;

    private static double Wait(double newTat, long limit, double now) =>
        limit > 0 ? Math.Max(0, newTat - Window - now) : 0;

    private static long Remaining(double tat, long limit, double now)
    {
        if (limit <= 0) return 0;
        double free = (now + Window - Math.Max(tat, now)) * limit / Window;
        return Math.Clamp((long)Math.Floor(free + UnitEpsilon), 0, limit);
    }
}
