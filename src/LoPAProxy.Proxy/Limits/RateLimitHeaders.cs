using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.Proxy.Limits;

/// <summary>
/// The headers OpenAI's API sends about rate limits — x-ratelimit-{limit,remaining,reset}-{requests,tokens}, resets
/// as durations like "1s", "6m0s" or "20ms" — for the limits a tenant has, plus LoPA's budget headers, and on a
/// refusal Retry-After (whole seconds) with retry-after-ms (what OpenAI's own clients read first).
/// </summary>
public static class RateLimitHeaders
{
    public static Dictionary<string, string> For(TenantLimits limits, RateDecision decision)
    {
        var headers = new Dictionary<string, string>();
        RateSnapshot s = decision.Snapshot;
        if (limits.RequestsPerMinute > 0)
        {
            headers["x-ratelimit-limit-requests"] = Number(limits.RequestsPerMinute);
            headers["x-ratelimit-remaining-requests"] = Number(s.RemainingRequests);
            headers["x-ratelimit-reset-requests"] = Duration(s.ResetRequestsSeconds);
        }
        if (limits.TokensPerMinute > 0)
        {
            headers["x-ratelimit-limit-tokens"] = Number(limits.TokensPerMinute);
            headers["x-ratelimit-remaining-tokens"] = Number(s.RemainingTokens);
            headers["x-ratelimit-reset-tokens"] = Duration(s.ResetTokensSeconds);
        }
        if (limits.TokenBudget > 0)
        {
            headers["x-lopa-budget-limit-tokens"] = Number(limits.TokenBudget);
            headers["x-lopa-budget-remaining-tokens"] = Number(s.BudgetRemaining);
            headers["x-lopa-budget-reset"] = s.BudgetResets.ToString("O", CultureInfo.InvariantCulture);
        }
        if (!decision.Admitted)
        {
            double wait = Math.Max(0, decision.RetryAfterSeconds);
            headers["retry-after"] = Number((long)Math.Ceiling(wait));
            headers["retry-after-ms"] = Number((long)Math.Ceiling(wait * 1000));
            // Waiting cannot help a request over the whole limit; a spent budget waits for its next period.
            if (decision.Refusal is Refusal.TooLarge or Refusal.Budget) headers["x-should-retry"] = "false";
        }
        return headers;
    }

    public static void Apply(IHeaderDictionary target, Dictionary<string, string> headers)
    {
        foreach (var (name, value) in headers) target[name] = value;
    }

    /// <summary>OpenAI's duration format: "20ms" under a second, else e.g. "6.5s", "1m30s", "2h0m0s".</summary>
    public static string Duration(double seconds)
    {
        if (seconds < 1) return Number((long)Math.Ceiling(seconds * 1000)) + "ms";
        if (seconds < 60) return Math.Round(seconds, 3).ToString(CultureInfo.InvariantCulture) + "s";
        var t = TimeSpan.FromSeconds(Math.Ceiling(seconds));
        return t.TotalHours >= 1
            ? $"{(long)t.TotalHours}h{t.Minutes}m{t.Seconds}s"
            : $"{t.Minutes}m{t.Seconds}s";
    }

    private static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);
}
