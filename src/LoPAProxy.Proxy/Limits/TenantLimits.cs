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
