using System.Diagnostics;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Proxy.Tests.Limits;
using LoPAProxy.Proxy.Tests.Store;

namespace LoPAProxy.Proxy.Tests.WebConsole;

/// <summary>The console, served by the proxy, driven in Debian's chromium by playwright-core.</summary>
public class ConsoleBrowserTests
{
    private const string PromptExample = "a joy from start to end. Sentiment:";

    [Fact]
    public async Task The_console_works_in_a_real_browser_for_a_tenant_and_an_operator()
    {
        await using StoreRig stack = await StoreRig.StartAsync(RateLimitHttpTests.Sqlite());
        string acme = await stack.NewTenantAsync("acme");
        string globex = await stack.NewTenantAsync("globex");
        using (HttpClient c = stack.Client(acme))
        {
            Assert.Equal(201, (int)(await c.PostAsync("/v1/adapters", StoreRig.Upload("story", "1",
                StoreRig.Adapter(1)))).StatusCode);
            // Older than the story version the browser uploads, and first by name: try-it must open on the newest.
            Assert.Equal(201, (int)(await c.PostAsync("/v1/adapters", StoreRig.Upload("aaa-first", "1",
                StoreRig.Adapter(4)))).StatusCode);
        }

        using (HttpClient c = stack.Client(globex))
        {
            Assert.Equal(201, (int)(await c.PostAsync("/v1/adapters", StoreRig.Upload("secret", "1",
                StoreRig.Adapter(2)))).StatusCode);
        }

        string files = TempDir.Create();
        string valid = Path.Combine(files, "story.safetensors"), invalid = Path.Combine(files, "broken.safetensors");
        LopaAdapter uploaded = StoreRig.Adapter(3);
        uploaded = uploaded.WithConfig(uploaded.Config with { PromptExample = PromptExample });
        File.WriteAllBytes(valid, uploaded.ToSingleFile());
        File.WriteAllBytes(invalid, "not a safetensors file at all"u8.ToArray());

        var psi = new ProcessStartInfo("node", Path.Combine(Node.Directory, "console-e2e.mjs"))
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Node.Directory,
        };
        psi.Environment["LOPA_URL"] = stack.Proxies[0].Urls.First();
        psi.Environment["TENANT_KEY"] = acme;
        psi.Environment["ADMIN_KEY"] = StoreRig.AdminKey;
        psi.Environment["OTHER_ADAPTER"] = "secret@1";
        psi.Environment["VALID_ADAPTER"] = valid;
        psi.Environment["INVALID_ADAPTER"] = invalid;
        psi.Environment["PROMPT_EXAMPLE"] = PromptExample;
        if (Environment.GetEnvironmentVariable("LOPA_CONSOLE_SCREENSHOTS") is { Length: > 0 } shots)
            psi.Environment["SCREENSHOTS"] = shots;
        using var node = Process.Start(psi)!;
        Task<string> stdout = node.StandardOutput.ReadToEndAsync(), stderr = node.StandardError.ReadToEndAsync();
        Assert.True(node.WaitForExit(240_000), "the browser run timed out");
        Assert.True(node.ExitCode == 0, await stderr + await stdout);
        JsonElement r = JsonDocument.Parse(await stdout).RootElement;

        Assert.Contains("not accepted", r.GetProperty("wrongKey").GetString());
        Assert.Equal("acme", r.GetProperty("tenant").GetString());
        Assert.False(string.IsNullOrWhiteSpace(r.GetProperty("invalidUpload").GetString()));
        Assert.Equal(3, r.GetProperty("adapterRows").GetInt32());
        Assert.Equal("stories260K:story", r.GetProperty("tryAdapter").GetString());
        Assert.Equal(PromptExample, r.GetProperty("tryPrompt").GetString()); // the adapter's own format
        Assert.Equal(["PC1 →", "PC2 →"], r.GetProperty("axisLabels").EnumerateArray().Select(l => l.GetString()));
        Assert.Contains("encoder", r.GetProperty("withMeta").GetString());
        JsonElement[] maps = r.GetProperty("heatmaps").EnumerateArray().ToArray();
        Assert.Equal(3, maps.Length); // Z_S, the gate, Z
        Assert.All(maps, m =>
        {
            Assert.Equal(4, m.GetProperty("rows").GetInt32()); // m
            Assert.Equal(64, m.GetProperty("columns").GetInt32()); // d
            Assert.Equal(64, m.GetProperty("width").GetInt32());
            Assert.True(m.GetProperty("painted").GetInt32() > 64, "an empty heatmap");
        });
        Assert.Equal(6, r.GetProperty("points").GetInt32());
        Assert.Equal(["good", "bad"], r.GetProperty("labels").EnumerateArray().Select(l => l.GetString()));
        Assert.Equal(8, r.GetProperty("bars").GetInt32()); // m norms and m offsets
        Assert.True(r.GetProperty("operatorHiddenFromTenant").GetBoolean());
        Assert.Equal(401, r.GetProperty("tenantOnAdmin").GetInt32());
        Assert.Equal(404, r.GetProperty("tenantOnOthers").GetInt32());
        Assert.True(r.GetProperty("narrowOverflow").GetInt32() <= 0, "the page scrolls sideways when narrow");
        Assert.Equal("lopa-", r.GetProperty("issuedKeyPrefix").GetString());
        Assert.Contains("newco", r.GetProperty("tenants").EnumerateArray().Select(t => t.GetString()));
        Assert.True(r.GetProperty("disabledAndEnabled").GetBoolean());
        Assert.All(r.GetProperty("backends").EnumerateArray(), b => Assert.Equal("ready", b.GetString()));
        Assert.Contains("fm-mean", r.GetProperty("encoders").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains("acme", r.GetProperty("operatorUsage").EnumerateArray().Select(u => u.GetString()));
        Assert.All(r.GetProperty("tenantLimits").EnumerateArray(), l => Assert.Contains("req/min", l.GetString()));
        Assert.Empty(r.GetProperty("pageErrors").EnumerateArray());
    }

    [Fact]
    public async Task The_console_is_served_without_a_key_under_a_strict_content_policy()
    {
        await using StoreRig stack = await StoreRig.StartAsync(RateLimitHttpTests.Sqlite());
        using HttpClient anonymous = stack.Client(null);
        using (HttpResponseMessage bare = await anonymous.GetAsync("/console"))
            Assert.Equal("/console/", bare.RequestMessage!.RequestUri!.AbsolutePath); // redirected to the folder
        using HttpResponseMessage page = await anonymous.GetAsync("/console/");
        Assert.Equal(200, (int)page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType!.MediaType);
        string policy = page.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("script-src 'self'", policy);
        Assert.DoesNotContain("unsafe-inline", policy);
        Assert.Contains("console.js", await page.Content.ReadAsStringAsync());
        using HttpResponseMessage script = await anonymous.GetAsync("/console/console.js");
        Assert.Equal("text/javascript", script.Content.Headers.ContentType!.MediaType);
        using var again = new HttpRequestMessage(HttpMethod.Get, "/console/console.js");
        again.Headers.TryAddWithoutValidation("If-None-Match", script.Headers.ETag!.Tag);
        Assert.Equal(304, (int)(await anonymous.SendAsync(again)).StatusCode);
        Assert.NotEqual(200, (int)(await anonymous.GetAsync("/console/../appsettings.json")).StatusCode);
        Assert.Equal(404, (int)(await anonymous.GetAsync("/console/nothing.js")).StatusCode);
        using HttpResponseMessage status = await anonymous.GetAsync("/admin/status");
        Assert.Equal(401, (int)status.StatusCode);
    }
}
