using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Proxy.Tests.Hardening;
using LoPAProxy.Proxy.Tests.Store;

namespace LoPAProxy.Proxy.Tests.Limits;

/// <summary>Limits over HTTP: exact under concurrency, OpenAI's 429 shape and headers, budgets, the admin
/// API.</summary>
public class RateLimitHttpTests
{
    public static Dictionary<string, string?> Sqlite(params (string Key, string Value)[] more)
    {
        var settings = new Dictionary<string, string?>
        {
            ["LoPA:Store:Kind"] = "sqlite", ["LoPA:Store:Path"] = Path.Combine(TempDir.Create(), "lopa.db"),
        };
        foreach (var (key, value) in more) settings[key] = value;
        return settings;
    }

    internal static async Task SetLimitsAsync(StoreRig stack, string tenant, object limits)
    {
        using HttpClient admin = stack.Client(StoreRig.AdminKey);
        using HttpResponseMessage r = await admin.PutAsJsonAsync($"/admin/tenants/{tenant}/limits", limits);
        Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
    }

    private static string Header(HttpResponseMessage r, string name) =>
        r.Headers.TryGetValues(name, out var values) ? values.Single() : throw new Xunit.Sdk.XunitException(
            $"no {name} header");

    [Fact]
    public async Task Sixty_four_concurrent_requests_against_ten_a_minute_admit_exactly_ten()
    {
        await using StoreRig stack = await StoreRig.StartAsync(Sqlite(), clock: new ManualClock());
        string key = await stack.NewTenantAsync("acme");
        await SetLimitsAsync(stack, "acme", new { requests_per_minute = 10 });
        using HttpClient c = stack.Client(key);
        HttpResponseMessage[] answers = await Task.WhenAll(Enumerable.Range(0, 64).Select(_ =>
            c.PostAsJsonAsync("/v1/chat/completions", HardeningFixture.Chat("stories260K"))));
        try
        {
            Assert.Equal(10, answers.Count(a => (int)a.StatusCode == 200));
            Assert.Equal(54, answers.Count(a => (int)a.StatusCode == 429));
            foreach (HttpResponseMessage refused in answers.Where(a => (int)a.StatusCode == 429))
            {
                JsonElement error = HardeningFixture.IsError(await refused.Content.ReadAsStringAsync(),
                    "rate_limit_exceeded");
                Assert.Equal("requests", error.GetProperty("type").GetString());
                Assert.Equal("10", Header(refused, "x-ratelimit-limit-requests"));
                Assert.Equal("0", Header(refused, "x-ratelimit-remaining-requests"));
                Assert.Equal("6", refused.Headers.RetryAfter!.Delta!.Value.TotalSeconds.ToString(
                    CultureInfo.InvariantCulture));
                Assert.Equal("6000", Header(refused, "retry-after-ms"));
                Assert.False(string.IsNullOrEmpty(Header(refused, "x-request-id")));
            }
            HttpResponseMessage[] admitted = answers.Where(a => (int)a.StatusCode == 200).ToArray();
            Assert.All(admitted, a => Assert.Equal("10", Header(a, "x-ratelimit-limit-requests")));
            Assert.Equal(Enumerable.Range(0, 10).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToHashSet(),
                admitted.Select(a => Header(a, "x-ratelimit-remaining-requests")).ToHashSet());
        }
        finally
        {
            foreach (HttpResponseMessage a in answers) a.Dispose();
        }
    }

    [Fact]
    public async Task Two_replicas_on_postgres_admit_exactly_ten_of_sixty_four_together()
    {
        await using ScratchDatabase db = await ScratchDatabase.CreateAsync("lopa_limits");
        var settings = new Dictionary<string, string?>
        {
            ["LoPA:Store:Kind"] = "postgres", ["LoPA:Store:ConnectionString"] = db.ConnectionString,
        };
        // One frozen clock for both replicas: no refill can sneak in however long the burst takes here.
        await using StoreRig stack = await StoreRig.StartAsync(settings, replicas: 2, clock: new ManualClock());
        string key = await stack.NewTenantAsync("acme");
        await SetLimitsAsync(stack, "acme", new { requests_per_minute = 10 });
        using HttpClient one = stack.Client(key, 0), two = stack.Client(key, 1);
        HttpResponseMessage[] answers = await Task.WhenAll(Enumerable.Range(0, 64).Select(i =>
            (i % 2 == 0 ? one : two).PostAsJsonAsync("/v1/chat/completions", HardeningFixture.Chat("stories260K"))));
        int[] statuses = answers.Select(a => (int)a.StatusCode).ToArray();
        foreach (HttpResponseMessage a in answers) a.Dispose();
        Assert.Equal(10, statuses.Count(s => s == 200));
    }

    [Fact]
    public async Task Token_limits_count_the_soft_prompt_rows_and_refuse_a_request_over_the_whole_limit()
    {
        await using StoreRig stack = await StoreRig.StartAsync(Sqlite());
        string key = await stack.NewTenantAsync("acme");
        using HttpClient c = stack.Client(key);
        Assert.Equal(201, (int)(await c.PostAsync("/v1/adapters", StoreRig.Upload("story", "1",
            StoreRig.Adapter(1)))).StatusCode);
        await SetLimitsAsync(stack, "acme", new { tokens_per_minute = 5 });
        async Task<long> Requested(string model)
        {
            using HttpResponseMessage r = await c.PostAsJsonAsync("/v1/chat/completions",
                HardeningFixture.Chat(model));
            Assert.Equal(429, (int)r.StatusCode);
            Assert.Equal("false", Header(r, "x-should-retry"));
            JsonElement error = HardeningFixture.IsError(await r.Content.ReadAsStringAsync(), "request_too_large");
            string message = error.GetProperty("message").GetString()!;
            int at = message.IndexOf("may use ", StringComparison.Ordinal) + "may use ".Length;
            return long.Parse(message[at..message.IndexOf(' ', at)], CultureInfo.InvariantCulture);
        }
        long plain = await Requested("stories260K");
        long adapted = await Requested("stories260K:story");
        // "Tom had a red kite\n" is 19 bytes → 5 estimated prompt tokens, plus max_tokens 4; the adapter adds m = 4.
        Assert.Equal(9, plain);
        Assert.Equal(plain + 4, adapted);
    }

    [Fact]
    public async Task A_spent_budget_is_refused_until_its_period_renews()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 12, 2, 10, 15, 0, TimeSpan.Zero));
        await using StoreRig stack = await StoreRig.StartAsync(Sqlite(), clock: clock);
        string key = await stack.NewTenantAsync("acme");
        await SetLimitsAsync(stack, "acme", new { token_budget = 40, budget_period = "hour" });
        using HttpClient c = stack.Client(key);
        HttpResponseMessage? refused = null;
        for (int i = 0; i < 20 && refused is null; i++)
        {
            HttpResponseMessage r = await c.PostAsJsonAsync("/v1/chat/completions",
                HardeningFixture.Chat("stories260K"));
            await r.Content.ReadAsStringAsync();
            if ((int)r.StatusCode == 429)
            {
                refused = r;
            }
            else
            {
                Assert.Equal(200, (int)r.StatusCode);
                r.Dispose();
            }
        }
        Assert.NotNull(refused);
        using (refused)
        {
            JsonElement error = HardeningFixture.IsError(await refused.Content.ReadAsStringAsync(),
                "insufficient_quota");
            Assert.Equal("insufficient_quota", error.GetProperty("type").GetString());
            Assert.Equal("false", Header(refused, "x-should-retry"));
            Assert.Equal(45 * 60, refused.Headers.RetryAfter!.Delta!.Value.TotalSeconds);
            Assert.Equal("2026-12-02T11:00:00.0000000+00:00", Header(refused, "x-lopa-budget-reset"));
        }
        JsonElement limits = JsonDocument.Parse(await c.GetStringAsync("/v1/limits")).RootElement;
        Assert.Equal(40, limits.GetProperty("limits").GetProperty("token_budget").GetInt64());
        long used = limits.GetProperty("budget").GetProperty("used_tokens").GetInt64();
        Assert.InRange(used, 28, 40 + 9);
        clock.Advance(TimeSpan.FromMinutes(45));
        using HttpResponseMessage renewed = await c.PostAsJsonAsync("/v1/chat/completions",
            HardeningFixture.Chat("stories260K"));
        Assert.Equal(200, (int)renewed.StatusCode);
    }

    [Fact]
    public async Task Concurrent_streams_are_capped_while_they_run()
    {
        await using StoreRig stack = await StoreRig.StartAsync(Sqlite(), delayPerTokenMs: 100);
        string key = await stack.NewTenantAsync("acme");
        await SetLimitsAsync(stack, "acme", new { concurrent_requests = 2 });
        using HttpClient c = stack.Client(key);
        async Task<HttpResponseMessage> Stream() => await c.SendAsync(new HttpRequestMessage(HttpMethod.Post,
            "/v1/chat/completions")
        {
            Content = JsonContent.Create(new
            {
                model = "stories260K", stream = true, max_tokens = 20,
                messages = new[] { new { role = "user", content = "Tom had a red kite" } },
            }),
        }, HttpCompletionOption.ResponseHeadersRead);
        using HttpResponseMessage one = await Stream(), two = await Stream();
        Assert.Equal(200, (int)one.StatusCode);
        Assert.Equal(200, (int)two.StatusCode);
        using (HttpResponseMessage third = await Stream())
        {
            Assert.Equal(429, (int)third.StatusCode);
            HardeningFixture.IsError(await third.Content.ReadAsStringAsync(), "concurrency_limit_exceeded");
        }
        await one.Content.ReadAsStringAsync(); // the first stream ends: its slot is free once it is settled
        var deadline = DateTime.UtcNow.AddSeconds(10);
        int status;
        do
        {
            using HttpResponseMessage next = await c.PostAsJsonAsync("/v1/chat/completions",
                HardeningFixture.Chat("stories260K"));
            status = (int)next.StatusCode;
        } while (status == 429 && DateTime.UtcNow < deadline);
        Assert.Equal(200, status);
    }

    [Fact]
    public async Task Limits_are_set_per_tenant_by_the_admin_and_read_by_the_tenant()
    {
        await using StoreRig stack = await StoreRig.StartAsync(Sqlite(("LoPA:RateLimits:RequestsPerMinute",
            "100"), ("LoPA:RateLimits:TokenBudget", "5000")));
        string acme = await stack.NewTenantAsync("acme");
        using HttpClient admin = stack.Client(StoreRig.AdminKey), tenant = stack.Client(acme);
        JsonElement defaults = JsonDocument.Parse(await tenant.GetStringAsync("/v1/limits")).RootElement;
        Assert.Equal(100, defaults.GetProperty("limits").GetProperty("requests_per_minute").GetInt64());
        Assert.Equal("month", defaults.GetProperty("limits").GetProperty("budget_period").GetString());
        Assert.Equal(5000, defaults.GetProperty("budget").GetProperty("remaining_tokens").GetInt64());

        await SetLimitsAsync(stack, "acme", new { requests_per_minute = 0, tokens_per_minute = 7000 });
        JsonElement set = JsonDocument.Parse(await tenant.GetStringAsync("/v1/limits")).RootElement;
        Assert.Equal(0, set.GetProperty("limits").GetProperty("requests_per_minute").GetInt64()); // 0: none for acme
        Assert.Equal(7000, set.GetProperty("limits").GetProperty("tokens_per_minute").GetInt64());
        Assert.Equal(5000, set.GetProperty("limits").GetProperty("token_budget").GetInt64()); // still the default
        using (HttpResponseMessage r = await tenant.PostAsJsonAsync("/v1/chat/completions",
            HardeningFixture.Chat("stories260K")))
        {
            Assert.Equal(200, (int)r.StatusCode);
            Assert.False(r.Headers.Contains("x-ratelimit-limit-requests"));
            Assert.Equal("7000", Header(r, "x-ratelimit-limit-tokens"));
        }

        using (HttpResponseMessage bad = await admin.PutAsJsonAsync("/admin/tenants/acme/limits",
            new { requests_per_minute = -1 }))
        {
            HardeningFixture.IsError(await bad.Content.ReadAsStringAsync(), "invalid_limits");
        }

        using (HttpResponseMessage bad = await admin.PutAsJsonAsync("/admin/tenants/acme/limits",
            new { budget_period = "fortnight" }))
        {
            Assert.Equal(400, (int)bad.StatusCode);
        }

        using (HttpResponseMessage missing = await admin.GetAsync("/admin/tenants/nobody/limits"))
            Assert.Equal(404, (int)missing.StatusCode);
        using (HttpResponseMessage missing = await admin.PutAsJsonAsync("/admin/tenants/nobody/limits",
            new { requests_per_minute = 1 }))
        {
            Assert.Equal(404, (int)missing.StatusCode);
        }

        using (HttpResponseMessage forbidden = await tenant.PutAsJsonAsync("/admin/tenants/acme/limits",
            new { requests_per_minute = 0 }))
        {
            Assert.Equal(401, (int)forbidden.StatusCode);
        }

        using (HttpResponseMessage cleared = await admin.DeleteAsync("/admin/tenants/acme/limits"))
        {
            JsonElement back = JsonDocument.Parse(await cleared.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal(100, back.GetProperty("limits").GetProperty("requests_per_minute").GetInt64());
        }
    }

    [Theory]
    [InlineData("open", 200)]
    [InlineData("closed", 503)]
    public async Task Unreachable_shared_counters_fail_open_or_closed_as_configured(string mode, int status)
    {
        await using StoreRig stack = await StoreRig.StartAsync(Sqlite(
            ("LoPA:RateLimits:Counters", "postgres"),
            ("LoPA:RateLimits:ConnectionString", "Host=127.0.0.1;Port=9;Username=x;Timeout=2"),
            ("LoPA:RateLimits:WhenCountersDown", mode), ("LoPA:RateLimits:RequestsPerMinute", "1")));
        string key = await stack.NewTenantAsync("acme");
        using HttpClient c = stack.Client(key);
        for (int i = 0; i < 3; i++) // over the limit of 1: nothing counts while the counters are away
        {
            using HttpResponseMessage r = await c.PostAsJsonAsync("/v1/chat/completions",
                HardeningFixture.Chat("stories260K"));
            string body = await r.Content.ReadAsStringAsync();
            Assert.Equal(status, (int)r.StatusCode);
            if (status == 503) HardeningFixture.IsError(body, "rate_limiter_unavailable");
        }
    }
}

/// <summary>The official openai client honours the proxy's Retry-After on a rate limit.</summary>
public class OpenAiClientRetryTests
{
    [Fact]
    public async Task The_openai_client_waits_as_retry_after_says_then_succeeds()
    {
        await using StoreRig stack = await StoreRig.StartAsync(RateLimitHttpTests.Sqlite());
        string key = await stack.NewTenantAsync("acme");
        await RateLimitHttpTests.SetLimitsAsync(stack, "acme", new { requests_per_minute = 30 }); // one per 2 s
        var psi = new System.Diagnostics.ProcessStartInfo("node", Path.Combine(Node.Directory, "openai-retry.mjs"))
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Node.Directory,
        };
        psi.Environment["OPENAI_BASE_URL"] = stack.Proxies[0].Urls.First() + "/v1";
        psi.Environment["OPENAI_API_KEY"] = key;
        using var node = System.Diagnostics.Process.Start(psi)!;
        Task<string> stdout = node.StandardOutput.ReadToEndAsync(), stderr = node.StandardError.ReadToEndAsync();
        Assert.True(node.WaitForExit(120_000), "node timed out");
        Assert.True(node.ExitCode == 0, await stderr);
        JsonElement r = JsonDocument.Parse(await stdout).RootElement;
        Assert.InRange(r.GetProperty("spent").GetInt32(), 30, 40); // the minute's burst, and a little refill
        JsonElement[] attempts = r.GetProperty("attempts").EnumerateArray().ToArray();
        Assert.Equal(2, attempts.Length);
        Assert.Equal(429, attempts[0].GetProperty("status").GetInt32());
        Assert.Equal(200, attempts[1].GetProperty("status").GetInt32());
        long waitMs = long.Parse(attempts[0].GetProperty("retryAfterMs").GetString()!, CultureInfo.InvariantCulture);
        Assert.InRange(waitMs, 1, 2000);
        Assert.Equal((long)Math.Ceiling(waitMs / 1000.0), long.Parse(attempts[0].GetProperty("retryAfter")
            .GetString()!, CultureInfo.InvariantCulture));
        long waited = attempts[1].GetProperty("at").GetInt64() - attempts[0].GetProperty("at").GetInt64();
        Assert.InRange(waited, waitMs, waitMs + 1500);
        Assert.False(string.IsNullOrEmpty(r.GetProperty("content").GetString()));
    }
}
