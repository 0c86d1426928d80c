using System.Globalization;
using System.Text.Json;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Auth;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Requests;
using LoPAProxy.Proxy.Store;
using LoPAProxy.Proxy.Tenancy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using static LoPAProxy.Proxy.Tenancy.TenancyEndpoints;

namespace LoPAProxy.Proxy.Usage;

/// <summary>
/// Usage and limits over HTTP: a tenant reads its own (GET /v1/usage, GET /v1/limits); the admin reads anyone's
/// (GET /admin/usage[?tenant=]) and sets a tenant's overrides (GET/PUT/DELETE /admin/tenants/{tenant}/limits).
/// Usage is bucketed like OpenAI's usage API: start_time/end_time in Unix seconds, bucket_width 1h or 1d.
/// </summary>
public static class UsageEndpoints
{
    private const long Day = 86400, Hour = 3600;

    public static void MapUsage(this IEndpointRouteBuilder app)
    {
        RouteGroupBuilder tenant = app.MapGroup("/v1").RequireAuthorization(ApiKeyAuthenticationHandler.TenantPolicy)
            .WithTags("usage");
        tenant.MapGet("/usage", Handler(h => Guard(h, Caller.Tenant, (_, t) => UsageAsync(h, t!))))
            .Describe<UsageResponse>("The caller's usage per adapter, in hour or day buckets");
        tenant.MapGet("/limits", Handler(h => Guard(h, Caller.Tenant, (_, t) => LimitsAsync(h, t!))))
            .Describe<LimitsResponse>("The caller's limits and how much of its token budget is used");

        RouteGroupBuilder admin = app.MapGroup("/admin").RequireAuthorization(ApiKeyAuthenticationHandler.AdminPolicy)
            .WithTags("admin");
        admin.MapGet("/usage", Handler(h => Guard(h, Caller.Admin, (_, _) =>
                UsageAsync(h, h.Request.Query["tenant"].FirstOrDefault()))))
            .Describe<UsageResponse>("Usage of every tenant (or ?tenant=) per adapter, in hour or day buckets");
        admin.MapGet("/tenants/{tenant}/limits", (HttpContext h, string tenant) => Guard(h, Caller.Admin,
                (s, _) => AdminLimitsAsync(h, s, tenant)))
            .Describe<LimitsResponse>("A tenant's limits: in effect, defaults, overrides, budget used");
        admin.MapPut("/tenants/{tenant}/limits", (HttpContext h, string tenant) => Guard(h, Caller.Admin,
                (_, _) => SetLimitsAsync(h, tenant)))
            .Describe<TenantLimitOverrides, LimitsResponse>(
                "Replace a tenant's overrides (absent or null fields: the default; 0: no limit)");
        admin.MapDelete("/tenants/{tenant}/limits", (HttpContext h, string tenant) => Guard(h, Caller.Admin,
                (s, _) => ClearLimitsAsync(h, s, tenant)))
            .Describe<LimitsResponse>("Remove a tenant's overrides: the defaults apply again");
    }

    private static async Task<IResult> UsageAsync(HttpContext h, string? tenant)
    {
        var (from, to, width) = Window(h.Request.Query, h.RequestServices.GetRequiredService<TimeProvider>());
        UsageRecorder recorder = h.RequestServices.GetRequiredService<UsageRecorder>();
        IReadOnlyList<UsageCounts> rows = await recorder.ReadAsync(tenant, from, to, h.RequestAborted);
        long step = width == "1h" ? Hour : Day;
        var buckets = new List<UsageBucket>();
        for (long start = from; start < to; start += step)
        {
            long end = Math.Min(start + step, to);
            buckets.Add(new UsageBucket(start, end, Sum(rows.Where(r => r.HourStart >= start && r.HourStart < end))));
        }
        return Json(new UsageResponse("page", from, to, width, buckets, Sum(rows)));
    }

    /// <summary>Rows summed per (tenant, adapter).</summary>
    private static List<UsageResult> Sum(IEnumerable<UsageCounts> rows) =>
        rows.GroupBy(r => (r.Tenant, r.Adapter))
            .Select(g => UsageResult.From(g.Aggregate((a, b) => a.Plus(b))))
            .OrderBy(r => r.Tenant, StringComparer.Ordinal).ThenBy(r => r.Adapter ?? "", StringComparer.Ordinal)
            .ToList();

    /// <summary>
    /// [start_time, end_time) aligned to the bucket width: by default the last 7 days in days, or the last 24
    /// hours in hours; at most 366 buckets.
    /// </summary>
    private static (long From, long To, string Width) Window(IQueryCollection query, TimeProvider clock)
    {
        string width = query["bucket_width"].FirstOrDefault() ?? "1d";
        if (width is not ("1h" or "1d")) throw ApiException.BadRequest("bucket_width is 1h or 1d", "bucket_width");
        long step = width == "1h" ? Hour : Day;
        long now = clock.GetUtcNow().ToUnixTimeSeconds();
        long to = Seconds(query, "end_time") ?? now;
        long from = Seconds(query, "start_time") ?? to - (width == "1h" ? Day : 7 * Day);
        from = from / step * step;
        to = (to + step - 1) / step * step;
        if (to <= from) throw ApiException.BadRequest("end_time must be after start_time", "end_time");
        if ((to - from) / step > 366)
            throw ApiException.BadRequest("at most 366 buckets per request; narrow the window", "start_time");
        return (from, to, width);
    }

    private static long? Seconds(IQueryCollection query, string name)
    {
        string? text = query[name].FirstOrDefault();
        if (text is null) return null;
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value)
            || value > 253402300799)
        {
            throw ApiException.BadRequest($"{name} is a Unix time in seconds", name);
        }

        return value;
    }

    private static async Task<IResult> LimitsAsync(HttpContext h, string tenant) =>
        Json(await DescribeAsync(h, tenant));

    private static async Task<IResult> AdminLimitsAsync(HttpContext h, ITenancyStore store, string tenant)
    {
        await RequireTenantAsync(store, tenant, h.RequestAborted);
        return Json(await DescribeAsync(h, tenant));
    }

    private static async Task<IResult> SetLimitsAsync(HttpContext h, string tenant)
    {
        using JsonDocument doc = await JsonBodies.ReadDocumentAsync(h.Request, SmallBodyBytes, h.RequestAborted);
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw ApiException.BadRequest("the body is a JSON object of limits", null, "invalid_limits");
        TenantLimitOverrides limits = doc.RootElement.Deserialize(TenancyJsonContext.Default.TenantLimitOverrides)
            ?? TenantLimitOverrides.None;
        if (limits.Problem() is { } problem) throw ApiException.BadRequest(problem, null, "invalid_limits");
        await Usage(h).SetLimitsAsync(tenant, limits, h.RequestAborted);
        Log(h).LogInformation("limits set {Tenant} {Limits}", tenant, doc.RootElement.GetRawText());
        return Json(await DescribeAsync(h, tenant));
    }

    private static async Task<IResult> ClearLimitsAsync(HttpContext h, ITenancyStore store, string tenant)
    {
        await Usage(h).SetLimitsAsync(tenant, null, h.RequestAborted);
        Log(h).LogInformation("limits cleared {Tenant}", tenant);
        return await AdminLimitsAsync(h, store, tenant);
    }

    private static async Task<LimitsResponse> DescribeAsync(HttpContext h, string tenant)
    {
        TenantLimitResolver resolver = h.RequestServices.GetRequiredService<TenantLimitResolver>();
        TimeProvider clock = h.RequestServices.GetRequiredService<TimeProvider>();
        // Read past the cache: the answer shows what the store holds now.
        TenantLimitOverrides overrides = await Usage(h).GetLimitsAsync(tenant, h.RequestAborted)
            ?? TenantLimitOverrides.None;
        TenantLimits limits = overrides.Over(resolver.Defaults);
        DateTimeOffset now = clock.GetUtcNow();
        DateTimeOffset start = limits.BudgetPeriod.Start(now);
        long used = await h.RequestServices.GetRequiredService<UsageRecorder>().TokensSinceAsync(tenant, start,
            h.RequestAborted);
        long? remaining = limits.TokenBudget > 0 ? Math.Max(0, limits.TokenBudget - used) : null;
        return new LimitsResponse(tenant, LimitsBody.From(limits), LimitsBody.From(resolver.Defaults), overrides,
            new BudgetState(start, limits.BudgetPeriod.End(now), used, remaining));
    }

    private static async Task RequireTenantAsync(ITenancyStore store, string tenant, CancellationToken cancel)
    {
        if (await store.GetTenantAsync(tenant, cancel) is null)
            throw new StoreNotFoundException($"tenant '{tenant}' does not exist");
    }

    private static IUsageStore Usage(HttpContext h) => h.RequestServices.GetRequiredService<IUsageStore>();

    private static ILogger Log(HttpContext h) =>
        h.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("LoPAProxy.Tenancy");
}
