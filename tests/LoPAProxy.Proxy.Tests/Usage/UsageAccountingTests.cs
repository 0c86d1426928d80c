using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LoPAProxy.Proxy.Tests.Limits;
using LoPAProxy.Proxy.Tests.Store;

namespace LoPAProxy.Proxy.Tests.Usage;

/// <summary>Usage is what the backends reported, per tenant and adapter, durable, and readable over HTTP.</summary>
public class UsageAccountingTests
{
    private static object Chat(string model, bool stream, bool includeUsage, string content) => includeUsage
        ? new
        {
            model, stream, max_tokens = 6, temperature = 0, stream_options = new { include_usage = true },
            messages = new[] { new { role = "user", content } },
        }
        : new { model, stream, max_tokens = 6, temperature = 0, messages = new[] { new { role = "user", content } } };

    /// <summary>Sends a chat; returns the usage the answer carried (null if none) and the raw text.</summary>
    private static async Task<(JsonElement? Usage, string Text)> SendAsync(HttpClient c, object body)
    {
        using HttpResponseMessage r = await c.PostAsJsonAsync("/v1/chat/completions", body);
        string text = await r.Content.ReadAsStringAsync();
        Assert.True(r.IsSuccessStatusCode, text);
        if (!text.StartsWith("data:", StringComparison.Ordinal))
            return (JsonDocument.Parse(text).RootElement.GetProperty("usage").Clone(), text);
        foreach (string line in text.Split('\n'))
        {
            if (!line.StartsWith("data: {", StringComparison.Ordinal)) continue;
            JsonElement chunk = JsonDocument.Parse(line[6..]).RootElement;
            if (chunk.TryGetProperty("usage", out JsonElement u) && u.ValueKind == JsonValueKind.Object)
                return (u.Clone(), text);
        }
        return (null, text);
    }

    private static (long Prompt, long Completion) Tokens(JsonElement usage) =>
        (usage.GetProperty("prompt_tokens").GetInt64(), usage.GetProperty("completion_tokens").GetInt64());

    [Fact]
    public async Task Usage_totals_equal_the_sum_of_the_backends_usage_fields()
    {
        await using StoreRig stack = await StoreRig.StartAsync(RateLimitHttpTests.Sqlite());
        string key = await stack.NewTenantAsync("acme");
        string other = await stack.NewTenantAsync("globex");
        using HttpClient c = stack.Client(key);
        Assert.Equal(201, (int)(await c.PostAsync("/v1/adapters", StoreRig.Upload("story", "1",
            StoreRig.Adapter(1)))).StatusCode);
        string[] texts = ["Tom had a red kite", "Lily saw a cat", "The sun was hot and the sky was blue"];
        var expected = new Dictionary<string, (long Requests, long Prompt, long Completion)>();
        foreach (string model in new[] { "stories260K", "stories260K:story" })
        {
            foreach (string text in texts)
            {
                foreach (var (stream, include) in new[] { (false, false), (true, true), (true, false) })
                {
                    var (usage, raw) = await SendAsync(c, Chat(model, stream, include, text));
                    if (stream && !include)
                    {
                        // The proxy asked the backend for usage; the client, which did not, never sees it.
                        Assert.DoesNotContain("usage", raw);
                        Assert.Contains("data: [DONE]", raw);
                        // The same greedy request asking for usage is answered identically, usage included.
                        (usage, _) = await SendAsync(c, Chat(model, true, true, text));
                    }
                    Assert.NotNull(usage);
                    string adapter = model.Contains(':') ? "story" : "";
                    var (p, q) = Tokens(usage!.Value);
                    var sum = expected.GetValueOrDefault(adapter);
                    int requests = stream && !include ? 2 : 1;
                    expected[adapter] = (sum.Requests + requests, sum.Prompt + p * requests,
                        sum.Completion + q * requests);
                }
            }
        }

        using (HttpResponseMessage bad = await c.PostAsync("/v1/chat/completions",
            new StringContent("{", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(400, (int)bad.StatusCode);
        }

        JsonElement page = JsonDocument.Parse(await c.GetStringAsync("/v1/usage?bucket_width=1h")).RootElement;
        JsonElement[] totals = page.GetProperty("totals").EnumerateArray().ToArray();
        Assert.All(totals, t => Assert.Equal("acme", t.GetProperty("tenant").GetString()));
        JsonElement plain = totals.Single(t => t.GetProperty("adapter").ValueKind == JsonValueKind.Null);
        JsonElement story = totals.Single(t => t.GetProperty("adapter").GetString() == "story");
        Assert.Equal(expected[""].Requests + 1, plain.GetProperty("requests").GetInt64()); // + the bad request
        Assert.Equal(1, plain.GetProperty("errors").GetInt64());
        Assert.Equal(expected[""].Prompt, plain.GetProperty("prompt_tokens").GetInt64());
        Assert.Equal(expected[""].Completion, plain.GetProperty("completion_tokens").GetInt64());
        Assert.Equal(0, plain.GetProperty("soft_prompt_rows").GetInt64());
        Assert.Equal(expected["story"].Requests, story.GetProperty("requests").GetInt64());
        Assert.Equal(expected["story"].Prompt, story.GetProperty("prompt_tokens").GetInt64());
        Assert.Equal(expected["story"].Completion, story.GetProperty("completion_tokens").GetInt64());
        Assert.Equal(4 * expected["story"].Requests, story.GetProperty("soft_prompt_rows").GetInt64());
        long bucketed = page.GetProperty("data").EnumerateArray()
            .SelectMany(b => b.GetProperty("results").EnumerateArray())
            .Sum(r => r.GetProperty("total_tokens").GetInt64());
        Assert.Equal(totals.Sum(t => t.GetProperty("total_tokens").GetInt64()), bucketed);

        // The admin sees the same figures; another tenant sees none of them.
        using HttpClient admin = stack.Client(StoreRig.AdminKey);
        JsonElement adminPage = JsonDocument.Parse(await admin.GetStringAsync("/admin/usage?tenant=acme"))
            .RootElement;
        Assert.Equal(page.GetProperty("totals").GetRawText(), adminPage.GetProperty("totals").GetRawText());
        using HttpClient globex = stack.Client(other);
        JsonElement theirs = JsonDocument.Parse(await globex.GetStringAsync("/v1/usage")).RootElement;
        Assert.Empty(theirs.GetProperty("totals").EnumerateArray());
        using (HttpResponseMessage forbidden = await globex.GetAsync("/admin/usage"))
            Assert.Equal(401, (int)forbidden.StatusCode);

        string metrics = await stack.ManagementClient().GetStringAsync("/metrics");
        Assert.Matches("lopa_usage_completion_tokens_total\\{[^}]*adapter=\"story\"[^}]*tenant=\"acme\"", metrics);
    }

    [Fact]
    public async Task Usage_and_a_spent_budget_survive_a_restart()
    {
        Dictionary<string, string?> settings = RateLimitHttpTests.Sqlite(("LoPA:Usage:FlushSeconds", "3600"));
        string key;
        await using (StoreRig first = await StoreRig.StartAsync(settings))
        {
            key = await first.NewTenantAsync("acme");
            using HttpClient c = first.Client(key);
            for (int i = 0; i < 6; i++) await SendAsync(c, Chat("stories260K", false, false, "Tom had a red kite"));
            // Reads the store plus this process's unwritten sums (writing nothing).
            long used = JsonDocument.Parse(await c.GetStringAsync("/v1/limits")).RootElement.GetProperty("budget")
                .GetProperty("used_tokens").GetInt64();
            Assert.True(used > 0);
            await RateLimitHttpTests.SetLimitsAsync(first, "acme", new { token_budget = used + 5 });
        } // stopping writes what the hour-long flush interval had not
        await using StoreRig second = await StoreRig.StartAsync(settings);
        using HttpClient again = second.Client(key);
        string after = JsonDocument.Parse(await again.GetStringAsync("/v1/usage")).RootElement.GetProperty("totals")
            .GetRawText();
        Assert.Contains("\"requests\":6", after);
        using HttpResponseMessage r = await again.PostAsJsonAsync("/v1/chat/completions",
            Chat("stories260K", false, false, "Tom had a red kite"));
        Assert.Equal(429, (int)r.StatusCode);
        Hardening.HardeningFixture.IsError(await r.Content.ReadAsStringAsync(), "insufficient_quota");
    }
}
