using System.Net.Http.Json;
using System.Text.Json;
using LoPAProxy.Proxy.Tests.Limits;
using LoPAProxy.Proxy.Tests.Store;

namespace LoPAProxy.Proxy.Tests.Hardening;

/// <summary>
/// Ways around token budgets found by an attack run (#22 items 1 and 2): each was free before, each is charged now.
/// The backend is the real reference model server (stories260K, slowed per token so a stream is still running when
/// the client resets it).
/// </summary>
public class AccountingAttackTests
{
    private static async Task<long> UsedTokensAsync(HttpClient c) =>
        JsonDocument.Parse(await c.GetStringAsync("/v1/limits")).RootElement.GetProperty("budget")
            .GetProperty("used_tokens").GetInt64();

    /// <summary>The tenant's usage totals (an empty object before anything is recorded).</summary>
    private static async Task<JsonElement> TotalsAsync(HttpClient c)
    {
        JsonElement[] totals = JsonDocument.Parse(await c.GetStringAsync("/v1/usage?bucket_width=1h")).RootElement
            .GetProperty("totals").EnumerateArray().ToArray();
        return totals.Length == 1 ? totals[0].Clone() : JsonDocument.Parse("{\"requests\":0}").RootElement;
    }

    /// <summary>Reads a stream until <paramref name="events"/> data events arrived, then resets the
    /// connection.</summary>
    private static async Task ResetAfterEventsAsync(HttpClient c, int events)
    {
        using var cancel = new CancellationTokenSource();
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new
            {
                model = "stories260K", stream = true, max_tokens = 200, temperature = 0, ignore_eos = true,
                messages = new[] { new { role = "user", content = "Tom had a red kite" } },
            }),
        };
        HttpResponseMessage response = await c.SendAsync(request, HttpCompletionOption.ResponseHeadersRead,
            cancel.Token);
        Assert.Equal(200, (int)response.StatusCode);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel.Token));
        int seen = 0;
        while (seen < events && await reader.ReadLineAsync(cancel.Token) is { } line)
            if (line.StartsWith("data: {", StringComparison.Ordinal)) seen++;
        Assert.Equal(events, seen);
        await cancel.CancelAsync(); // the client goes away mid-stream: the connection is reset
        response.Dispose();
    }

    [Fact]
    public async Task A_stream_the_client_resets_is_charged_the_tokens_it_was_sent()
    {
        await using StoreRig stack = await StoreRig.StartAsync(RateLimitHttpTests.Sqlite(),
            delayPerTokenMs: 40);
        string key = await stack.NewTenantAsync("acme");
        await RateLimitHttpTests.SetLimitsAsync(stack, "acme", new { token_budget = 100_000, budget_period = "day" });
        using HttpClient c = stack.Client(key);
        const int Streams = 3, Events = 6;
        for (int i = 0; i < Streams; i++) await ResetAfterEventsAsync(c, Events);

        // Settlement runs when the proxy sees the request end; give it a moment.
        long used = 0;
        for (var deadline = DateTime.UtcNow.AddSeconds(10); DateTime.UtcNow < deadline; await Task.Delay(100))
        {
            used = await UsedTokensAsync(c);
            JsonElement totals = await TotalsAsync(c);
            if (totals.GetProperty("requests").GetInt64() == Streams && used > 0) break;
        }
        JsonElement usage = await TotalsAsync(c);
        Assert.Equal(Streams, usage.GetProperty("requests").GetInt64());
        long completion = usage.GetProperty("completion_tokens").GetInt64();
        long prompt = usage.GetProperty("prompt_tokens").GetInt64();
        // Every event the client read is a token it got; the backend may have sent a few more before the reset.
        Assert.True(completion >= Streams * Events && completion <= Streams * 200, usage.ToString());
        Assert.True(prompt >= Streams, $"prompt tokens {prompt}");
        Assert.Equal(prompt + completion, used); // the budget is charged exactly what usage records
    }

    [Fact]
    public async Task Max_completion_tokens_on_completions_cannot_shrink_the_reservation()
    {
        await using StoreRig stack = await StoreRig.StartAsync(RateLimitHttpTests.Sqlite());
        string key = await stack.NewTenantAsync("acme");
        await RateLimitHttpTests.SetLimitsAsync(stack, "acme", new { token_budget = 1000, budget_period = "day" });
        using HttpClient c = stack.Client(key);
        Task<HttpResponseMessage>[] sent = Enumerable.Range(0, 8).Select(_ => c.PostAsJsonAsync("/v1/completions",
            new
            {
                model = "stories260K", prompt = "Tom had a red kite", max_tokens = 400, max_completion_tokens = 1,
                temperature = 0, ignore_eos = true,
            })).ToArray();
        HttpResponseMessage[] answers = await Task.WhenAll(sent);
        int admitted = answers.Count(a => (int)a.StatusCode == 200);
        Assert.All(answers, a => Assert.Contains((int)a.StatusCode, new[] { 200, 429 }));
        foreach (HttpResponseMessage a in answers) a.Dispose();
        // 400 completion tokens are reserved (what the backend generates), so at most 1000 / 400 fit; the slip let
        // every request in at 1 token each.
        Assert.InRange(admitted, 1, 2);
        Assert.InRange(await UsedTokensAsync(c), 400, 1000 + 400 + 10);
    }
}
