using System.Text.Json.Serialization;

namespace LoPAProxy.Proxy.Store;

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
}
