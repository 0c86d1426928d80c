using LoPAProxy.Proxy.Store;

namespace LoPAProxy.Proxy.Limits;

/// <summary>What a tenant's stored overrides mean: the limits in effect over the defaults, and what is wrong with
/// them.</summary>
public static class LimitOverrides
{
    public static TenantLimits Over(this TenantLimitOverrides o, TenantLimits defaults) => new(
        o.RequestsPerMinute ?? defaults.RequestsPerMinute,
        o.TokensPerMinute ?? defaults.TokensPerMinute,
        o.ConcurrentRequests ?? defaults.ConcurrentRequests,
        o.TokenBudget ?? defaults.TokenBudget,
        BudgetPeriods.TryParse(o.BudgetPeriod, out var period) ? period : defaults.BudgetPeriod);

    /// <summary>What is wrong with these overrides, or null.</summary>
    public static string? Problem(this TenantLimitOverrides o)
    {
        if (o.RequestsPerMinute < 0 || o.TokensPerMinute < 0 || o.ConcurrentRequests < 0 || o.TokenBudget < 0)
            return "limits are 0 (none) or positive";
        if (o.BudgetPeriod is not null && !BudgetPeriods.TryParse(o.BudgetPeriod, out _))
            return $"budget_period '{o.BudgetPeriod}' is not one of {string.Join(", ", BudgetPeriods.Names)}";
        return null;
    }
}
