using System.Security.Claims;
using System.Text.Encodings.Web;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Configuration;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Auth;

/// <summary>
/// Bearer keys as an ASP.NET Core authentication scheme: the admin key (LoPA:AdminKey, compared in constant time on
/// its hash) makes an admin; a tenant key (configured or in the store, by SHA-256) makes that tenant, as the
/// "tenant" claim. No key: no identity. A wrong key: a failed authentication. Challenges and forbidden answers are
/// OpenAI error JSON with 401 — a tenant key on an admin route learns nothing more than a wrong key does.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions,
    ILoggerFactory logger,
    UrlEncoder encoder, TenantKeys keys, IOptions<LoPAOptions> options)
    : AuthenticationHandler<AuthenticationSchemeOptions>(schemeOptions, logger, encoder)
{
    public const string SchemeName = "LoPAKey", TenantClaim = "lopa_tenant", AdminRole = "lopa_admin";
    public const string TenantPolicy = "tenant", AdminPolicy = "admin";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        using var span = Observability.ProxyTelemetry.Activities.StartActivity("lopa.auth");
        string authorization = Request.Headers.Authorization.ToString();
        if (authorization.Length == 0) return AuthenticateResult.NoResult();
        if (IsAdminKey(authorization)) return Success(new Claim(ClaimTypes.Role, AdminRole));
        string? tenant = await keys.AuthenticateAsync(authorization, Context.RequestAborted);
        return tenant is null ? AuthenticateResult.Fail("unknown key") : Success(new Claim(TenantClaim, tenant));
    }

    private bool IsAdminKey(string authorization)
    {
        string? adminKey = options.Value.AdminKey;
        return adminKey is not null && BearerKey.FromHeader(authorization) is { } key
            && key.Matches(BearerKey.HashOf(adminKey));
    }

    private static AuthenticateResult Success(Claim claim) =>
        AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity([claim],
            SchemeName)), SchemeName));

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        ApiException.WriteAsync(Response, 401, "a valid API key is required (Authorization: Bearer <key>)",
            "authentication_error", null, "invalid_api_key");

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        ApiException.WriteAsync(Response, 401, "this route needs the admin key", "authentication_error", null,
            "invalid_admin_key");
}

/// <summary>DI: the key scheme as the default, and the "tenant" and "admin" policies.</summary>
public static class ApiKeyAuthentication
{
    public static IServiceCollection AddLoPAAuthentication(this IServiceCollection services)
    {
        services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(ApiKeyAuthenticationHandler.TenantPolicy, p =>
                p.RequireClaim(ApiKeyAuthenticationHandler.TenantClaim))
            .AddPolicy(ApiKeyAuthenticationHandler.AdminPolicy, p =>
                p.RequireRole(ApiKeyAuthenticationHandler.AdminRole));
        return services;
    }

    /// <summary>The caller's tenant, or null (an admin, or nobody).</summary>
    public static string? TenantOf(ClaimsPrincipal user) =>
        user.FindFirst(ApiKeyAuthenticationHandler.TenantClaim)?.Value;

    public static bool IsAdmin(ClaimsPrincipal user) => user.IsInRole(ApiKeyAuthenticationHandler.AdminRole);
}
