using System.Text.Json.Serialization;
using LoPAProxy.Proxy.Configuration;

namespace LoPAProxy.Proxy.Limits;

/// <summary>A calendar period in UTC over which a token budget is counted.</summary>
public enum BudgetPeriod { Hour, Day, Week, Month }

public static class BudgetPeriods
{
    public static readonly string[] Names = ["hour", "day", "week", "month"];

    public static bool TryParse(string? name, out BudgetPeriod period) =>
        Enum.TryParse(name, ignoreCase: true, out period) && Names.Contains(name!.ToLowerInvariant());

    public static string Name(this BudgetPeriod period) => period.ToString().ToLowerInvariant();

    /// <summary>The start of the period that contains <paramref name="now"/>.</summary>
    public static DateTimeOffset Start(this BudgetPeriod period, DateTimeOffset now)
    {
        DateTimeOffset utc = now.ToUniversalTime();
        DateTimeOffset day = new(utc.Year, utc.Month, utc.Day, 0, 0, 0, TimeSpan.Zero);
        return period switch
        {
            BudgetPeriod.Hour => day.AddHours(utc.Hour),
            BudgetPeriod.Day => day,
            BudgetPeriod.Week => day.AddDays(-(((int)utc.DayOfWeek + 6) % 7)),
            _ => new DateTimeOffset(utc.Year, utc.Month, 1, 0, 0, 0, TimeSpan.Zero),
        };
    }

    public static DateTimeOffset End(this BudgetPeriod period, DateTimeOffset now)
    {
        DateTimeOffset start = period.Start(now);
        return period switch
        {
            BudgetPeriod.Hour => start.AddHours(1),
            BudgetPeriod.Day => start.AddDays(1),
            BudgetPeriod.Week => start.AddDays(7),
            _ => start.AddMonths(1),
        };
    }
}

/// <summary>One tenant's limits in effect; 0 means none.</summary>
public sealed record TenantLimits(long RequestsPerMinute, long TokensPerMinute, int ConcurrentRequests,
    long TokenBudget, BudgetPeriod BudgetPeriod)
{
    public bool Any => RequestsPerMinute > 0 || TokensPerMinute > 0 || ConcurrentRequests > 0 || TokenBudget > 0;

    public static TenantLimits From(RateLimitOptions o) => new(o.RequestsPerMinute, o.TokensPerMinute,
        o.ConcurrentRequests, o.TokenBudget,
        BudgetPeriods.TryParse(o.BudgetPeriod, out BudgetPeriod p) ? p : BudgetPeriod.Month);
}

/// <summary>
/// A tenant's own limits, set through the admin API: each field that is present replaces the default (0: none for
/// this tenant); an absent (null) field keeps the default.
/// </summary>
public sealed record TenantLimitOverrides(
    [property: JsonPropertyName("requests_per_minute")] long? RequestsPerMinute = null,
    [property: JsonPropertyName("tokens_per_minute")] long? TokensPerMinute = null,
    [property: JsonPropertyName("concurrent_requests")] int? ConcurrentRequests = null,
    [property: JsonPropertyName("token_budget")] long? TokenBudget = null,
    [property: JsonPropertyName("budget_period")] string? BudgetPeriod = null)
{
    public static readonly TenantLimitOverrides None = new();

    public TenantLimits Over(TenantLimits defaults) => new(
        RequestsPerMinute ?? defaults.RequestsPerMinute,
        TokensPerMinute ?? defaults.TokensPerMinute,
        ConcurrentRequests ?? defaults.ConcurrentRequests,
        TokenBudget ?? defaults.TokenBudget,
        BudgetPeriods.TryParse(BudgetPeriod, out var period) ? period : defaults.BudgetPeriod);

    /// <summary>What is wrong with these overrides, or null.</summary>
    public string? Problem()
    {
        if (RequestsPerMinute < 0 || TokensPerMinute < 0 || ConcurrentRequests < 0 || TokenBudget < 0)
            return "limits are 0 (none) or positive";
        if (BudgetPeriod is not null && !BudgetPeriods.TryParse(BudgetPeriod, out _))
            return $"budget_period '{BudgetPeriod}' is not one of {string.Join(", ", BudgetPeriods.Names)}";
        return null;
    }
}
