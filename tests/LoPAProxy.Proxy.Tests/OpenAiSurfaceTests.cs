using System.Net.Http.Json;
using System.Text.Json;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Proxy.Tests.Hardening;

namespace LoPAProxy.Proxy.Tests;

/// <summary>What OpenAI clients expect of the API surface: a model list per tenant, the asked-for model echoed,
/// 401s.</summary>
public class OpenAiSurfaceTests(HardeningFixture f) : IClassFixture<HardeningFixture>
{
    [Fact]
    public async Task Models_lists_the_base_models_and_the_callers_own_adapters_only()
    {
        using HttpClient acme = f.Client(HardeningFixture.AcmeKey);
        JsonElement list = JsonDocument.Parse(await acme.GetStringAsync("/v1/models")).RootElement;
        Assert.Equal("list", list.GetProperty("object").GetString());
        var entries = list.GetProperty("data").EnumerateArray()
            .Select(e => (Id: e.GetProperty("id").GetString()!,
                Owner: e.GetProperty("owned_by").GetString()!)).ToList();
        Assert.Contains(("stories260K", "lopaproxy"), entries);
        Assert.Contains(("stories260K:story", "acme"), entries);
        Assert.Contains(("stories260K:mini", "acme"), entries);
        Assert.DoesNotContain(entries, e => e.Id.Contains("secret", StringComparison.Ordinal)); // globex's
        using HttpClient nobody = f.Client(null);
        Assert.Equal(401, (int)(await nobody.GetAsync("/v1/models")).StatusCode);
    }

    [Fact]
    public async Task Answers_name_the_model_the_client_asked_for_plain_and_streamed()
    {
        var (status, text) = await f.PostAsync(HardeningFixture.AcmeKey, "/v1/chat/completions",
            HardeningFixture.Chat("stories260K:story"));
        Assert.Equal(200, status);
        Assert.Equal("stories260K:story", JsonDocument.Parse(text).RootElement.GetProperty("model").GetString());
        Assert.Equal("stories260K",
            f.Backend.Last!.Json.GetProperty("model").GetString()); // the backend saw its own name

        using HttpClient c = f.Client(HardeningFixture.AcmeKey);
        using HttpResponseMessage r = await c.PostAsJsonAsync("/v1/chat/completions",
            HardeningFixture.Chat("stories260K:story", stream: true));
        string stream = await r.Content.ReadAsStringAsync();
        string[] events = stream.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e =>
            e.Trim()["data: ".Length..]).ToArray();
        Assert.Equal("[DONE]", events[^1]);
        Assert.Equal(2, events.Length - 1);
        Assert.All(events[..^1], e => Assert.Equal("stories260K:story",
            JsonDocument.Parse(e).RootElement.GetProperty("model").GetString()));
    }
}

/// <summary>Unknown routes: 401 without a key (nothing about the proxy's routes is revealed), 404 with one.</summary>
public class UnknownRouteTests(ProxyFixture f) : IClassFixture<ProxyFixture>
{
    [Fact]
    public async Task Unknown_routes_are_401_without_a_key_and_404_with_one()
    {
        using HttpClient nobody = f.Client(null), acme = f.Client(ProxyFixture.AcmeKey);
        using HttpResponseMessage anonymous = await nobody.GetAsync("/no/such/route");
        using HttpResponseMessage known = await acme.GetAsync("/no/such/route");
        Assert.Equal(401, (int)anonymous.StatusCode);
        Assert.Equal("invalid_api_key", JsonDocument.Parse(await anonymous.Content.ReadAsStringAsync()).RootElement
            .GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(404, (int)known.StatusCode);
        Assert.Equal(200, (int)(await nobody.GetAsync("/healthz")).StatusCode); // health stays open
    }
}

/// <summary>/metrics (Prometheus, on the management listener only) carries the LoPA metrics, and the Grafana
/// dashboard uses exactly them.</summary>
public class MetricsTests
{
    [Fact]
    public async Task Metrics_cover_requests_the_lopa_step_caches_and_store_and_the_dashboard_uses_only_live_names()
    {
        var settings = new Dictionary<string, string?>
        {
            ["LoPA:Store:Kind"] = "sqlite", ["LoPA:Store:Path"] = Path.Combine(Engine.Tests.Support.TempDir.Create(),
                "lopa.db"),
        };
        await using Store.StoreRig stack = await Store.StoreRig.StartAsync(settings);
        // The meters are process-wide and other tests' proxies run in this process: a tenant of its own keeps the
        // count exact.
        string tenant = "metrics-" + Guid.NewGuid().ToString("N")[..12];
        string key = await stack.NewTenantAsync(tenant);
        using HttpClient c = stack.Client(key);
        Assert.Equal(201, (int)(await c.PostAsync("/v1/adapters", Store.StoreRig.Upload("story", "1",
            Store.StoreRig.Adapter(1)))).StatusCode);
        await Limits.RateLimitHttpTests.SetLimitsAsync(stack, tenant, new { requests_per_minute = 3 });
        foreach (bool stream in new[] { false, true, false })
        {
            using HttpResponseMessage r = await c.PostAsJsonAsync("/v1/chat/completions",
                HardeningFixture.Chat("stories260K:story", stream: stream));
            Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
            await r.Content.ReadAsStringAsync();
        }
        using (HttpResponseMessage refused = await c.PostAsJsonAsync("/v1/chat/completions",
            HardeningFixture.Chat("stories260K:story")))
        {
            Assert.Equal(429, (int)refused.StatusCode);
        }

        using HttpClient anonymous = stack.Client(null), management = stack.ManagementClient();
        // #22 item 6: the series name tenants and adapters, so the public port does not serve them.
        using (HttpResponseMessage hidden = await anonymous.GetAsync("/metrics"))
        {
            Assert.Equal(404, (int)hidden.StatusCode);
            HardeningFixture.IsError(await hidden.Content.ReadAsStringAsync(), "route_not_found");
        }
        using (HttpResponseMessage other = await management.GetAsync("/v1/models"))
            Assert.Equal(404, (int)other.StatusCode); // the management port serves metrics and probes only
        Assert.Equal(200, (int)(await management.GetAsync("/healthz")).StatusCode);
        string metrics = await management.GetStringAsync("/metrics");
        string series = $"lopa_requests_total\\{{[^}}]*adapter=\"story\"[^}}]*status=\"200\"[^}}]*" +
            $"tenant=\"{tenant}\"[^}}]*\\}} 3";
        Assert.Matches(series, metrics);
        var live = metrics.Split('\n').Where(l => l.StartsWith("lopa_", StringComparison.Ordinal))
            .Select(l => l.Split('{', ' ')[0]).ToHashSet();
        string dashboard = File.ReadAllText(RepoFiles.Path_("deploy", "grafana-dashboard.json"));
        var used = System.Text.RegularExpressions.Regex.Matches(dashboard, "lopa_[a-z_]+").Select(m =>
            m.Value).ToHashSet();
        Assert.True(used.Count >= 10, string.Join(", ", used));
        Assert.All(used, name => Assert.True(live.Contains(name),
            $"the dashboard uses {name}, which /metrics does not have"));
    }

}

/// <summary>The admin and tenant APIs are described at /openapi/v1.json with their typed request and response
/// shapes.</summary>
public class OpenApiTests
{
    [Fact]
    public async Task The_openapi_document_describes_the_admin_and_tenant_apis()
    {
        var settings = new Dictionary<string, string?>
        {
            ["LoPA:Store:Kind"] = "sqlite", ["LoPA:Store:Path"] = Path.Combine(Engine.Tests.Support.TempDir.Create(),
                "lopa.db"),
        };
        await using Store.StoreRig stack = await Store.StoreRig.StartAsync(settings);
        using HttpClient anonymous = stack.Client(null);
        JsonElement doc = JsonDocument.Parse(await anonymous.GetStringAsync("/openapi/v1.json")).RootElement;
        Assert.StartsWith("3.", doc.GetProperty("openapi").GetString());
        JsonElement paths = doc.GetProperty("paths");
        foreach (string path in new[] { "/admin/tenants", "/admin/tenants/{tenant}/keys", "/v1/adapters",
            "/v1/adapters/{reference}",
                     "/v1/adapters/{name}/activate", "/v1/usage", "/v1/limits", "/admin/usage",
                     "/admin/tenants/{tenant}/limits", "/v1/adapters/{reference}/soft-prompt", "/admin/status",
                     "/v1/files", "/v1/files/{id}", "/v1/files/{id}/content" })
        {
            Assert.True(paths.TryGetProperty(path, out _), $"{path} is not described");
        }

        JsonElement schemas = doc.GetProperty("components").GetProperty("schemas");
        foreach (string schema in new[] { "AdapterResponse", "AdapterEnvelope", "IssuedKeyResponse", "ErrorResponse",
            "ActivateRequest", "UsageResponse", "LimitsResponse", "TenantLimitOverrides", "SoftPromptView",
            "StatusResponse" })
        {
            Assert.True(schemas.TryGetProperty(schema, out _), $"no schema {schema}");
        }

        JsonElement adapter = schemas.GetProperty("AdapterResponse").GetProperty("properties");
        Assert.True(adapter.TryGetProperty("size_bytes", out _)); // the names clients see on the wire
    }
}
