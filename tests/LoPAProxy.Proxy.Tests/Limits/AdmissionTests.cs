using LoPAProxy.Proxy.Limits;

namespace LoPAProxy.Proxy.Tests.Limits;

/// <summary>The limiter's arithmetic against the behaviour OpenAI documents for its limits.</summary>
public class AdmissionTests
{
    private static readonly double Now = Admission.Seconds(new DateTimeOffset(2026, 12, 2, 10, 15, 0, TimeSpan.Zero));

    private static TenantLimits Limits(long rpm = 0, long tpm = 0, int concurrent = 0, long budget = 0,
        BudgetPeriod period = BudgetPeriod.Day) => new(rpm, tpm, concurrent, budget, period);

    [Fact]
    public void A_minute_limit_admits_a_whole_minute_at_once_then_one_per_interval()
    {
        TenantLimits limits = Limits(rpm: 10);
        RateCounters c = RateCounters.Empty;
        int admitted = 0;
        RateDecision last = null!;
        for (int i = 0; i < 64; i++)
        {
            last = Admission.Decide(limits, c, 0, Now);
            if (last.Admitted) admitted++;
            c = last.Next;
        }
        Assert.Equal(10, admitted);
        Assert.Equal(Refusal.Requests, last.Refusal);
        Assert.Equal(6, last.RetryAfterSeconds, 6); // 60 s / 10
        Assert.Equal(0, last.Snapshot.RemainingRequests);
        Assert.Equal(60, last.Snapshot.ResetRequestsSeconds, 6);
        Assert.False(Admission.Decide(limits, c, 0, Now + 5.9).Admitted);
        RateDecision later = Admission.Decide(limits, c, 0, Now + 6);
        Assert.True(later.Admitted);
        Assert.Equal(0, later.Snapshot.RemainingRequests);
        Assert.True(Admission.Decide(limits, c, 0, Now + 60).Snapshot.RemainingRequests == 9);
    }

    [Fact]
    public void Tokens_are_reserved_then_settled_to_what_was_used()
    {
        TenantLimits limits = Limits(tpm: 600); // 10 tokens a second
        RateDecision first = Admission.Decide(limits, RateCounters.Empty, 500, Now);
        Assert.True(first.Admitted);
        Assert.Equal(100, first.Snapshot.RemainingTokens);
        RateDecision refused = Admission.Decide(limits, first.Next, 200, Now);
        Assert.Equal(Refusal.Tokens, refused.Refusal);
        Assert.Equal(10, refused.RetryAfterSeconds, 6); // 100 tokens short at 10 a second
        // It used 120 of the 500 reserved: 380 come back, and now 200 fit.
        RateCounters settled = Admission.Settle(limits, first.Next, 500, 120, first.Next.BudgetPeriodStart, Now);
        Assert.Equal(0, settled.InFlight);
        Assert.Equal(480, Admission.Snapshot(limits, settled, Now).RemainingTokens);
        Assert.True(Admission.Decide(limits, settled, 200, Now).Admitted);
        // A refund never fills past full; a charge past the reservation goes into debt.
        RateCounters refunded = Admission.Settle(limits, settled, 10_000, 0, settled.BudgetPeriodStart, Now);
        Assert.Equal(600, Admission.Snapshot(limits, refunded, Now).RemainingTokens);
        RateCounters debt = Admission.Settle(limits, refunded, 0, 900, refunded.BudgetPeriodStart, Now);
        Assert.Equal(0, Admission.Snapshot(limits, debt, Now).RemainingTokens);
        Assert.False(Admission.Decide(limits, debt, 1, Now + 29).Admitted);
        Assert.True(Admission.Decide(limits, debt, 1, Now + 30.2).Admitted);
    }

    [Fact]
    public void A_request_over_the_whole_limit_is_too_large_not_merely_early()
    {
        RateDecision d = Admission.Decide(Limits(tpm: 100), RateCounters.Empty, 101, Now);
        Assert.Equal(Refusal.TooLarge, d.Refusal);
        Assert.Equal(Refusal.TooLarge, Admission.Decide(Limits(budget: 100), RateCounters.Empty, 101, Now).Refusal);
        Assert.True(Admission.Decide(Limits(tpm: 100), RateCounters.Empty, 100, Now).Admitted);
    }

    [Fact]
    public void Concurrency_counts_requests_in_flight_until_settled()
    {
        TenantLimits limits = Limits(concurrent: 2);
        RateCounters c = Admission.Decide(limits, RateCounters.Empty, 0, Now).Next;
        c = Admission.Decide(limits, c, 0, Now).Next;
        RateDecision third = Admission.Decide(limits, c, 0, Now);
        Assert.Equal(Refusal.Concurrency, third.Refusal);
        Assert.Equal(c, third.Next); // a refusal moves nothing
        c = Admission.Settle(limits, c, 0, 0, c.BudgetPeriodStart, Now);
        Assert.True(Admission.Decide(limits, c, 0, Now).Admitted);
    }

    [Fact]
    public void A_budget_runs_out_then_renews_with_its_period()
    {
        TenantLimits limits = Limits(budget: 100, period: BudgetPeriod.Hour);
        RateDecision a = Admission.Decide(limits, RateCounters.Empty, 60, Now);
        RateCounters c = Admission.Settle(limits, a.Next, 60, 70, a.Next.BudgetPeriodStart, Now);
        RateDecision refused = Admission.Decide(limits, c, 40, Now + 10);
        Assert.Equal(Refusal.Budget, refused.Refusal);
        Assert.Equal(30, refused.Snapshot.BudgetRemaining);
        Assert.Equal(45 * 60 - 10, refused.RetryAfterSeconds, 3); // 10:15:10 → 11:00
        Assert.Equal(new DateTimeOffset(2026, 12, 2, 11, 0, 0, TimeSpan.Zero), refused.Snapshot.BudgetResets);
        RateDecision renewed = Admission.Decide(limits, c, 40, Now + 45 * 60);
        Assert.True(renewed.Admitted);
        Assert.Equal(60, renewed.Snapshot.BudgetRemaining);
        // A request admitted in the old period settles there, not in the new one.
        RateCounters late = Admission.Settle(limits, renewed.Next, 60, 0, a.Next.BudgetPeriodStart, Now + 45 * 60);
        Assert.Equal(40, late.BudgetUsed);
    }

    [Theory]
    [InlineData("2026-12-02T10:15:00Z", BudgetPeriod.Hour, "2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z")]
    [InlineData("2026-12-02T10:15:00Z", BudgetPeriod.Day, "2026-12-02T00:00:00Z", "2026-12-03T00:00:00Z")]
    [InlineData("2026-12-02T10:15:00Z", BudgetPeriod.Week, "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z")]
    [InlineData("2026-12-06T23:59:59Z", BudgetPeriod.Week, "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z")]
    [InlineData("2026-12-31T23:00:00Z", BudgetPeriod.Month, "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")]
    public void Budget_periods_are_calendar_periods_in_utc(string now, BudgetPeriod period, string start, string end)
    {
        DateTimeOffset t = DateTimeOffset.Parse(now, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(DateTimeOffset.Parse(start, System.Globalization.CultureInfo.InvariantCulture), period.Start(t));
        Assert.Equal(DateTimeOffset.Parse(end, System.Globalization.CultureInfo.InvariantCulture), period.End(t));
    }

    [Theory]
    [InlineData(0.02, "20ms")]
    [InlineData(6, "6s")]
    [InlineData(6.5, "6.5s")]
    [InlineData(360, "6m0s")]
    [InlineData(3600 * 25, "25h0m0s")]
    public void Resets_are_written_as_openai_writes_them(double seconds, string text) =>
        Assert.Equal(text, RateLimitHeaders.Duration(seconds));
}
