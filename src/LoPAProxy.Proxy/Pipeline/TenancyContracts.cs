using System.Text.Json;
using System.Text.Json.Serialization;
using LoPAProxy.Proxy.Store;

namespace LoPAProxy.Proxy.Pipeline;

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
public sealed partial class TenancyJsonContext : JsonSerializerContext;
