using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using LoPAProxy.Proxy.Tests.Hardening;
using LoPAProxy.Proxy.Tests.Store;

namespace LoPAProxy.Proxy.Tests.Tenancy;

/// <summary>
/// #22 item 4: store keys are remembered, yet a revoked key stops working at once on the replica that revoked it and
/// promptly on another (PostgreSQL's notification; at the latest Adapters:RevalidateSeconds) — the bound adapter
/// changes have.
/// </summary>
public class KeyCacheTests
{
    [Fact]
    public async Task A_revoked_key_stops_working_at_once_here_and_promptly_on_another_replica()
    {
        await using ScratchDatabase db = await ScratchDatabase.CreateAsync("lopa_keys");
        var settings = new Dictionary<string, string?>
        {
            ["LoPA:Store:Kind"] = "postgres", ["LoPA:Store:ConnectionString"] = db.ConnectionString,
        };
        await using StoreRig stack = await StoreRig.StartAsync(settings, replicas: 2);
        string key = await stack.NewTenantAsync("acme");
        using HttpClient here = stack.Client(key, 0), there = stack.Client(key, 1);
        using HttpClient admin = stack.Client(StoreRig.AdminKey, 0);
        // Both replicas have the key remembered.
        Assert.Equal(200, (int)(await here.GetAsync("/v1/adapters")).StatusCode);
        Assert.Equal(200, (int)(await there.GetAsync("/v1/adapters")).StatusCode);
        string id = JsonDocument.Parse(await admin.GetStringAsync("/admin/tenants/acme/keys")).RootElement
            .GetProperty("data")[0].GetProperty("id").GetString()!;
        Assert.Equal(204, (int)(await admin.DeleteAsync($"/admin/tenants/acme/keys/{id}")).StatusCode);

        using (HttpResponseMessage refused = await here.GetAsync("/v1/adapters"))
        {
            Assert.Equal(401, (int)refused.StatusCode); // at once: the store's change dropped it before the answer
            HardeningFixture.IsError(await refused.Content.ReadAsStringAsync(), "invalid_api_key");
        }
        var watch = Stopwatch.StartNew();
        int status;
        do
        {
            using HttpResponseMessage r = await there.PostAsJsonAsync("/v1/chat/completions",
                HardeningFixture.Chat("stories260K"));
            status = (int)r.StatusCode;
            if (status != 401) await Task.Delay(20);
        } while (status != 401 && watch.Elapsed < TimeSpan.FromSeconds(10));
        Assert.Equal(401, status);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(6),
            $"the other replica took {watch.Elapsed.TotalSeconds:F1} s");
    }
}
