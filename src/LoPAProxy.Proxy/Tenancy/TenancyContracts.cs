using System.Text.Json;
using System.Text.Json.Serialization;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Store;

namespace LoPAProxy.Proxy.Tenancy;

/// <summary>POST /admin/tenants.</summary>
public sealed record CreateTenantRequest([property: JsonPropertyName("name")] string Name);

/// <summary>POST /v1/adapters/{name}/activate.</summary>
public sealed record ActivateRequest([property: JsonPropertyName("version")] string Version);

public sealed record TenantResponse(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("disabled")] bool Disabled,
    [property: JsonPropertyName("created")] DateTimeOffset? Created)
{
    public static TenantResponse From(TenantRecord t) => new(t.Name, t.Disabled, t.Created);
}

public sealed record KeyResponse(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("tenant")] string Tenant,
    [property: JsonPropertyName("created")] DateTimeOffset Created,
    [property: JsonPropertyName("revoked")] bool Revoked)
{
    public static KeyResponse From(KeyRecord k) => new(k.Id, k.Tenant, k.Created, k.Revoked);
}

/// <summary>A key as issued: the only time the key itself is shown.</summary>
public sealed record IssuedKeyResponse(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("tenant")] string Tenant,
    [property: JsonPropertyName("key")] string Key,
    [property: JsonPropertyName("note")] string Note);

public sealed record AdapterResponse(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("version")] string Version,
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("active")] bool Active,
    [property: JsonPropertyName("sha256")] string Sha256,
    [property: JsonPropertyName("parameters")] long Parameters,
    [property: JsonPropertyName("size_bytes")] long SizeBytes,
    [property: JsonPropertyName("created")] DateTimeOffset Created)
{
    public static AdapterResponse From(AdapterVersionInfo a) =>
        new(a.Name, a.Version, $"{a.Name}@{a.Version}", a.Active, a.Sha256, a.Parameters, a.SizeBytes, a.Created);
}

/// <summary>One adapter version, with its config when asked for one by reference.</summary>
public sealed record AdapterEnvelope(
    [property: JsonPropertyName("adapter")] AdapterResponse Adapter,
    [property: JsonPropertyName("config"),
        JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] JsonElement? Config = null);

public sealed record ActivatedResponse([property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("active")] string Active);

/// <summary>OpenAI's list shape: {"data": [...]}.</summary>
public sealed record ListResponse<T>([property: JsonPropertyName("data")] IReadOnlyList<T> Data);

/// <summary>OpenAI's error shape, for the API description (ApiException writes it).</summary>
public sealed record ErrorResponse([property: JsonPropertyName("error")] ErrorBody Error);

public sealed record ErrorBody(
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("param")] string? Param,
    [property: JsonPropertyName("code")] string? Code);

/// <summary>One tenant's (and adapter's) usage in one bucket; adapter null for requests without one.</summary>
public sealed record UsageResult(
    [property: JsonPropertyName("tenant")] string Tenant,
    [property: JsonPropertyName("adapter")] string? Adapter,
    [property: JsonPropertyName("requests")] long Requests,
    [property: JsonPropertyName("errors")] long Errors,
    [property: JsonPropertyName("rate_limited")] long RateLimited,
    [property: JsonPropertyName("prompt_tokens")] long PromptTokens,
    [property: JsonPropertyName("completion_tokens")] long CompletionTokens,
    [property: JsonPropertyName("total_tokens")] long TotalTokens,
    [property: JsonPropertyName("soft_prompt_rows")] long SoftPromptRows,
    [property: JsonPropertyName("latency_ms")] long LatencyMs)
{
    public static UsageResult From(UsageCounts u) => new(u.Tenant, u.Adapter.Length == 0 ? null : u.Adapter,
        u.Requests, u.Errors, u.RateLimited, u.PromptTokens, u.CompletionTokens, u.Tokens, u.SoftPromptRows,
        u.LatencyMs);
}

/// <summary>Usage in [start_time, end_time), Unix seconds, as in OpenAI's usage API.</summary>
public sealed record UsageBucket(
    [property: JsonPropertyName("start_time")] long StartTime,
    [property: JsonPropertyName("end_time")] long EndTime,
    [property: JsonPropertyName("results")] IReadOnlyList<UsageResult> Results);

public sealed record UsageResponse(
    [property: JsonPropertyName("object")] string Object,
    [property: JsonPropertyName("start_time")] long StartTime,
    [property: JsonPropertyName("end_time")] long EndTime,
    [property: JsonPropertyName("bucket_width")] string BucketWidth,
    [property: JsonPropertyName("data")] IReadOnlyList<UsageBucket> Data,
    [property: JsonPropertyName("totals")] IReadOnlyList<UsageResult> Totals);

/// <summary>Limits in effect (0: none).</summary>
public sealed record LimitsBody(
    [property: JsonPropertyName("requests_per_minute")] long RequestsPerMinute,
    [property: JsonPropertyName("tokens_per_minute")] long TokensPerMinute,
    [property: JsonPropertyName("concurrent_requests")] int ConcurrentRequests,
    [property: JsonPropertyName("token_budget")] long TokenBudget,
    [property: JsonPropertyName("budget_period")] string BudgetPeriod)
{
    public static LimitsBody From(TenantLimits l) => new(l.RequestsPerMinute, l.TokensPerMinute,
        l.ConcurrentRequests, l.TokenBudget, l.BudgetPeriod.Name());
}

/// <summary>The budget period now running and the tokens used in it so far.</summary>
public sealed record BudgetState(
    [property: JsonPropertyName("period_start")] DateTimeOffset PeriodStart,
    [property: JsonPropertyName("resets_at")] DateTimeOffset ResetsAt,
    [property: JsonPropertyName("used_tokens")] long UsedTokens,
    [property: JsonPropertyName("remaining_tokens")] long? RemainingTokens);

/// <summary>A tenant's limits: in effect, the defaults, its own overrides, and its budget so far.</summary>
public sealed record LimitsResponse(
    [property: JsonPropertyName("tenant")] string Tenant,
    [property: JsonPropertyName("limits")] LimitsBody Limits,
    [property: JsonPropertyName("defaults")] LimitsBody Defaults,
    [property: JsonPropertyName("overrides")] TenantLimitOverrides Overrides,
    [property: JsonPropertyName("budget")] BudgetState Budget);

/// <summary>Source-generated serialisation for the admin and tenant APIs (no reflection at run time).</summary>
[JsonSerializable(typeof(CreateTenantRequest))]
[JsonSerializable(typeof(ActivateRequest))]
[JsonSerializable(typeof(TenantResponse))]
[JsonSerializable(typeof(ListResponse<TenantResponse>))]
[JsonSerializable(typeof(ListResponse<KeyResponse>))]
[JsonSerializable(typeof(IssuedKeyResponse))]
[JsonSerializable(typeof(AdapterEnvelope))]
[JsonSerializable(typeof(ListResponse<AdapterResponse>))]
[JsonSerializable(typeof(ActivatedResponse))]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(UsageResponse))]
[JsonSerializable(typeof(LimitsResponse))]
[JsonSerializable(typeof(TenantLimitOverrides))]
public sealed partial class TenancyJsonContext : JsonSerializerContext;
