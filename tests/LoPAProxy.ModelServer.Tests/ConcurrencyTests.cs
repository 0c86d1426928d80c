namespace LoPAProxy.ModelServer.Tests;

public class ConcurrencyTests
{
    [Fact]
    public async Task Concurrent_requests_do_not_share_kv_state()
    {
        await using var server = new OwnedServer(new ModelServerOptions { ModelPath = "unused", Port = 0, MaxConcurrent = 4 });
        string[] prompts = { "Tom had a red kite", "Once upon a time", "Lily and Ben", "The sun was hot", "A big dog" };
        var sequential = new List<string>();
        foreach (string p in prompts) sequential.Add(await Complete(server.Fixture, p));
        var concurrent = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => Complete(server.Fixture, prompts[i % prompts.Length])));
        for (int i = 0; i < 20; i++) Assert.Equal(sequential[i % prompts.Length], concurrent[i]);
    }

    [Fact]
    public async Task Concurrent_requests_are_decoded_together_in_one_context()
    {
        var options = new ModelServerOptions { ModelPath = "unused", Port = 0, MaxConcurrent = 4 };
        await using var server = new OwnedServer(options);
        var decoder = (LoPAProxy.ModelServer.Generation.BatchDecoder)server.Fixture.App.Services
            .GetService(typeof(LoPAProxy.ModelServer.Generation.BatchDecoder))!;
        var requests = Enumerable.Range(0, 4).Select(i => server.Fixture.PostAsync("/v1/completions",
            new { prompt = "Once upon a time", max_tokens = 400, temperature = 0, ignore_eos = true }));
        foreach (var (status, _) in await Task.WhenAll(requests)) Assert.Equal(200, status);
        Assert.True(decoder.LargestStep >= 2, $"at most {decoder.LargestStep} sequence(s) per decode call");
    }

    private static async Task<string> Complete(ServerFixture f, string prompt)
    {
        var (status, body) = await f.PostAsync("/v1/completions", new { prompt, max_tokens = 40, temperature = 0 });
        Assert.Equal(200, status);
        return body.GetProperty("choices")[0].GetProperty("text").GetString()!;
    }

    [Fact]
    public async Task A_full_queue_answers_503_and_a_disconnect_cancels_the_generation()
    {
        await using var server = new OwnedServer(new ModelServerOptions { ModelPath = "unused", Port = 0, MaxConcurrent = 1, MaxQueued = 0, DelayPerTokenMs = 20 });
        var f = server.Fixture;
        var scheduler = (LoPAProxy.ModelServer.Generation.GenerationScheduler)f.App.Services.GetService(typeof(LoPAProxy.ModelServer.Generation.GenerationScheduler))!;
        // A long streaming generation holds the only slot...
        using var cts = new CancellationTokenSource();
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
        {
            Content = System.Net.Http.Json.JsonContent.Create(new { prompt = "Once upon a time", max_tokens = 500, temperature = 0.8, stream = true }),
        };
        var response = await f.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
        Assert.StartsWith("data: ", await reader.ReadLineAsync(cts.Token));
        Assert.Equal(1, scheduler.InFlight);
        // ...so the next request is turned away at once.
        var (status, body) = await f.PostAsync("/v1/completions", new { prompt = "Hi", max_tokens = 2 });
        Assert.Equal(503, status);
        Assert.Equal("queue_full", body.GetProperty("error").GetProperty("code").GetString());
        // The client leaves: the generation stops and the slot frees well before 500 tokens could be made.
        cts.Cancel();
        response.Dispose();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (scheduler.InFlight != 0 && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(0, scheduler.InFlight);
        var (after, _) = await f.PostAsync("/v1/completions", new { prompt = "Hi", max_tokens = 2 });
        Assert.Equal(200, after);
    }

    private sealed class OwnedServer : IAsyncDisposable
    {
        public ServerFixture Fixture { get; }
        public OwnedServer(ModelServerOptions options) { Fixture = new ServerFixture(options); Fixture.InitializeAsync().GetAwaiter().GetResult(); }
        public async ValueTask DisposeAsync() => await Fixture.DisposeAsync();
    }
}
