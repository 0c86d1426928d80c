using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Store;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Tests.Limits;

/// <summary>Counters that fail: the documented behaviour, logged once per 30 s rather than once per request.</summary>
public class RateLimiterOutageTests
{
    private sealed class DownCounters : IRateCounterStore
    {
        public string Kind => "postgres";

        public Task PrepareAsync(CancellationToken cancel) => throw new Npgsql.NpgsqlException("connection refused");

        public Task<RateDecision> AdmitAsync(string tenant, TenantLimits limits, long tokens, string lease,
            CancellationToken cancel) => throw new Npgsql.NpgsqlException("connection refused");

        public Task SettleAsync(RateTicket ticket, long usedTokens, CancellationToken cancel) =>
            throw new Npgsql.NpgsqlException("connection refused");
    }

    private sealed class Recorder : ILogger<RateLimiter>
    {
        public List<string> Lines { get; } = new();

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel level, EventId id, TState state, Exception? e,
            Func<TState, Exception?, string> formatter) => Lines.Add($"{level}: {formatter(state, e)}");
    }

    [Theory]
    [InlineData("open")]
    [InlineData("closed")]
    public async Task Down_counters_admit_or_refuse_as_configured_and_say_so_once(string mode)
    {
        var options = Options.Create(new LoPAOptions
        {
            RateLimits = new RateLimitOptions
            {
                RequestsPerMinute = 1,
                WhenCountersDown = OptionNames.TryParse(mode, out CountersDownPolicy policy) ? policy
                    : throw new ArgumentException(mode),
            },
        });
        await using var store = new SqliteTenancyStore(Path.Combine(TempDir.Create(), "lopa.db"));
        await store.InitializeAsync();
        var log = new Recorder();
        var limiter = new RateLimiter(new DownCounters(),
            new TenantLimitResolver(store, store, TimeProvider.System, options), TimeProvider.System, options, log);
        for (int i = 0; i < 5; i++)
        {
            var http = new DefaultHttpContext();
            if (mode == "open")
            {
                Assert.Null(await limiter.AdmitAsync(http, "acme", 10));
            }
            else
            {
                ApiException e = await Assert.ThrowsAsync<ApiException>(() => limiter.AdmitAsync(http, "acme", 10));
                Assert.Equal(503, e.Status);
                Assert.Equal("rate_limiter_unavailable", e.Code);
            }
        }
        await limiter.SettleAsync(new RateTicket("acme", "l", TenantLimits.From(options.Value.RateLimits), 1, 0), 1);
        string line = Assert.Single(log.Lines);
        Assert.StartsWith("Warning: the postgres rate-limit counters failed (connection refused)", line);
        Assert.Contains($"WhenCountersDown: {mode}", line);
    }
}
