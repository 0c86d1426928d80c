using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Tests.Hardening;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Tests.Limits;

/// <summary>Rewrite memory is budgeted process-wide: past Limits:MaxRewriteBytesInFlight requests queue, then get
/// 503 with Retry-After; the per-request cap follows the model.</summary>
public class RewriteBudgetTests
{
    private static RewriteBudget Budget(long max, int queueSeconds) => new(Options.Create(new LoPAOptions
    {
        Limits = new LimitOptions { MaxRewriteBytesInFlight = max, RewriteQueueSeconds = queueSeconds },
    }));

    [Fact]
    public async Task A_reservation_waits_for_room_and_gets_it_when_another_ends()
    {
        RewriteBudget budget = Budget(1000, queueSeconds: 30);
        IDisposable first = await budget.ReserveAsync(700, CancellationToken.None);
        Task<IDisposable> second = budget.ReserveAsync(700, CancellationToken.None);
        await Task.Delay(200);
        Assert.False(second.IsCompleted);
        first.Dispose();
        first.Dispose(); // twice is once
        using IDisposable lease = await second.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(700, budget.InFlight);
    }

    [Fact]
    public async Task Past_the_queue_time_it_is_a_503_with_retry_after_and_too_big_is_a_400()
    {
        RewriteBudget budget = Budget(1000, queueSeconds: 1);
        using IDisposable held = await budget.ReserveAsync(600, CancellationToken.None);
        var busy = await Assert.ThrowsAsync<ApiException>(() => budget.ReserveAsync(600, CancellationToken.None));
        Assert.Equal(503, busy.Status);
        Assert.Equal("rewrite_capacity", busy.Code);
        Assert.Equal("1", busy.Headers["retry-after"]);
        var tooBig = await Assert.ThrowsAsync<ApiException>(() => budget.ReserveAsync(1001, CancellationToken.None));
        Assert.Equal((400, "request_too_large"), (tooBig.Status, tooBig.Code));
        Assert.Equal(600, budget.InFlight);
    }

    [Fact]
    public void The_per_request_cap_follows_the_model_unless_set()
    {
        Assert.Equal(4096L * 4096, new LimitOptions().EmbeddingValuesCap(4096, 4096)); // Llama-2-7B: 16 Mi
        Assert.Equal(2L << 20, new LimitOptions().EmbeddingValuesCap(512, 64)); // a small model keeps 2 Mi
        Assert.Equal(5, new LimitOptions { MaxEmbeddingValuesPerRequest = 5 }.EmbeddingValuesCap(4096, 4096));
    }

    [Fact]
    public async Task Through_the_proxy_a_request_past_the_budget_queues_then_gets_503_and_the_next_one_passes()
    {
        await using RecordingBackend backend = await RecordingBackend.StartAsync();
        string model = SharedFiles.Path_("models", "stories260K", "stories260K.bin");
        string adapters = TempDir.Create();
        var config = new AdapterConfig
        {
            NumVirtualTokens = 4, TokenDim = 64, Rank = 2, HiddenSize = 16, Encoder = "fm-mean", EncoderDim = 64,
            BaseModel = "stories260K",
        };
        Core.Tests.GeneratorTests.Random(config, 5).SaveDirectory(Path.Combine(adapters, "acme", "story"));
        string store = await Store.SeededStore.ImportAsync(adapters);
        const string Key = "acme-key-0123456789abcdef";
        IConfiguration settings = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ReverseProxy:Routes:c:ClusterId"] = "c", ["ReverseProxy:Routes:c:Match:Path"] = "/v1/completions",
            ["ReverseProxy:Clusters:c:Destinations:d1:Address"] = backend.Url,
            ["LoPA:Clusters:c:Dialect"] = "vllm-completions", ["LoPA:Clusters:c:Model"] = "stories260K",
            ["LoPA:Clusters:c:HiddenSize"] = "64", ["LoPA:Clusters:c:ModelPath"] = model,
            ["LoPA:Encoders:0"] = "fm-mean", ["LoPA:EncoderFiles:FoundationModel"] = model,
            ["LoPA:Store:Path"] = store, ["LoPA:Tenants:acme:ApiKeys:0"] = Key,
            // One ~11-row request (≈ 11 KB at 16 bytes per value) fits; two do not.
            ["LoPA:Limits:MaxRewriteBytesInFlight"] = "20000", ["LoPA:Limits:RewriteQueueSeconds"] = "1",
        }).Build();
        await using WebApplication proxy = ProxyApp.Build(settings, "http://127.0.0.1:0");
        await proxy.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri(proxy.Urls.First()) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        var request = new { model = "stories260K:story", prompt = "Tom had a red kite", max_tokens = 4 };

        backend.Hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<HttpResponseMessage> first = client.PostAsJsonAsync("/v1/completions", request);
        while (backend.Requests.IsEmpty) await Task.Delay(20); // the first holds its reservation at the backend
        using HttpResponseMessage refused = await client.PostAsJsonAsync("/v1/completions", request);
        Assert.Equal(503, (int)refused.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
        JsonElement error = (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.Equal("rewrite_capacity", error.GetProperty("code").GetString());

        backend.Hold.SetResult();
        using HttpResponseMessage done = await first;
        Assert.Equal(200, (int)done.StatusCode);
        backend.Hold = null;
        using HttpResponseMessage next = await client.PostAsJsonAsync("/v1/completions", request);
        Assert.Equal(200, (int)next.StatusCode);
    }
}
