using System.Data.Common;
using System.Text.Json;

namespace LoPAProxy.Proxy.Store;

/// <summary>Usage aggregates (one row per tenant, adapter and hour) and per-tenant limit overrides.</summary>
public abstract partial class SqlTenancyStore
{
    private static readonly string[] UsageSchema =
    [
        "CREATE TABLE IF NOT EXISTS usage (tenant TEXT NOT NULL, adapter TEXT NOT NULL, hour BIGINT NOT NULL, " +
        "requests BIGINT NOT NULL, errors BIGINT NOT NULL, rate_limited BIGINT NOT NULL, " +
        "prompt_tokens BIGINT NOT NULL, completion_tokens BIGINT NOT NULL, soft_prompt_rows BIGINT NOT NULL, " +
        "latency_ms BIGINT NOT NULL, PRIMARY KEY (tenant, hour, adapter))",
        "CREATE TABLE IF NOT EXISTS tenant_limits (tenant TEXT PRIMARY KEY REFERENCES tenants(name), " +
        "limits TEXT NOT NULL)",
    ];

    private const string AddUsageSql =
        "INSERT INTO usage (tenant, adapter, hour, requests, errors, rate_limited, prompt_tokens, completion_tokens, " +
        "soft_prompt_rows, latency_ms) VALUES (@t, @a, @h, @r, @e, @l, @p, @c, @s, @ms) " +
        "ON CONFLICT (tenant, hour, adapter) DO UPDATE " +
        "SET requests = usage.requests + EXCLUDED.requests, errors = usage.errors + EXCLUDED.errors, " +
        "rate_limited = usage.rate_limited + EXCLUDED.rate_limited, " +
        "prompt_tokens = usage.prompt_tokens + EXCLUDED.prompt_tokens, " +
        "completion_tokens = usage.completion_tokens + EXCLUDED.completion_tokens, " +
        "soft_prompt_rows = usage.soft_prompt_rows + EXCLUDED.soft_prompt_rows, " +
        "latency_ms = usage.latency_ms + EXCLUDED.latency_ms";

    public async Task AddUsageAsync(IReadOnlyCollection<UsageCounts> deltas, CancellationToken cancel = default)
    {
        if (deltas.Count == 0) return;
        await using DbConnection c = await OpenAsync(cancel);
        await using DbTransaction t = await c.BeginTransactionAsync(cancel);
        foreach (UsageCounts d in deltas)
        {
            await Exec(c, t, AddUsageSql, cancel, ("t", d.Tenant), ("a", d.Adapter), ("h", d.HourStart),
                ("r", d.Requests), ("e", d.Errors), ("l", d.RateLimited), ("p", d.PromptTokens),
                ("c", d.CompletionTokens), ("s", d.SoftPromptRows), ("ms", d.LatencyMs));
        }

        await t.CommitAsync(cancel);
    }

    public async Task<IReadOnlyList<UsageCounts>> ReadUsageAsync(string? tenant, long from, long to,
        CancellationToken cancel = default)
    {
        const string Columns = "SELECT tenant, adapter, hour, requests, errors, rate_limited, prompt_tokens, " +
            "completion_tokens, soft_prompt_rows, latency_ms FROM usage WHERE hour >= @f AND hour < @u";
        static UsageCounts Row(DbDataReader r) => new(r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetInt64(3),
            r.GetInt64(4), r.GetInt64(5), r.GetInt64(6), r.GetInt64(7), r.GetInt64(8), r.GetInt64(9));
        return tenant is null
            ? await Query(Columns + " ORDER BY hour, tenant, adapter", Row, cancel, ("f", from), ("u", to))
            : await Query(Columns + " AND tenant = @t ORDER BY hour, adapter", Row, cancel, ("f", from), ("u", to),
                ("t", tenant));
    }

    public async Task<TenantLimitOverrides?> GetLimitsAsync(string tenant, CancellationToken cancel = default)
    {
        List<string> rows = await Query("SELECT limits FROM tenant_limits WHERE tenant = @t", r => r.GetString(0),
            cancel, ("t", tenant));
        return rows.Count == 0 ? null : JsonSerializer.Deserialize(rows[0], LimitsJson.Default.TenantLimitOverrides);
    }

    public async Task SetLimitsAsync(string tenant, TenantLimitOverrides? limits, CancellationToken cancel = default)
    {
        await Write(tenant, null, async (c, t) =>
        {
            await RequireTenant(c, t, tenant, cancel);
            await Exec(c, t, "DELETE FROM tenant_limits WHERE tenant = @t", cancel, ("t", tenant));
            if (limits is null) return;
            string json = JsonSerializer.Serialize(limits, LimitsJson.Default.TenantLimitOverrides);
            await Exec(c, t, "INSERT INTO tenant_limits (tenant, limits) VALUES (@t, @l)", cancel, ("t", tenant),
                ("l", json));
        }, cancel);
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(TenantLimitOverrides))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(
    DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
internal sealed partial class LimitsJson : System.Text.Json.Serialization.JsonSerializerContext;
