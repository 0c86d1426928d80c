using System.Diagnostics;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Observability;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Limits;

/// <summary>
/// Admits a tenant's request against its limits before any encoder or backend work (throwing a 429 in OpenAI's
/// shape, with Retry-After and x-ratelimit-* headers, when a limit refuses), and settles it when its answer has
/// ended. Shared counters that fail or time out are handled as LoPA:RateLimits:WhenCountersDown says.
/// </summary>
public sealed class RateLimiter(IRateCounterStore counters, TenantLimitResolver limits, TimeProvider clock,
    IOptions<LoPAOptions> options, ILogger<RateLimiter> log)
{
    private RateLimitOptions Options => options.Value.RateLimits;
    private long _lastOutageLog = -60_000; // so the first outage is logged

    /// <summary>
    /// The request's ticket (null when the tenant has no limits or the counters were down and the request was let
    /// through), after writing the x-ratelimit-* headers to the response.
    /// </summary>
    /// <exception cref="ApiException">429 when a limit refuses; 503 when the counters are down and it fails
    /// closed.</exception>
    public async Task<RateTicket?> AdmitAsync(HttpContext http, string tenant, long tokens)
    {
        TenantLimits l = await limits.ForAsync(tenant, http.RequestAborted);
        if (!l.Any) return null;
        string lease = Guid.NewGuid().ToString("N");
        long started = Stopwatch.GetTimestamp();
        RateDecision decision;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted))
        {
            if (counters.Kind != "local") timeout.CancelAfter(Options.CountersTimeoutMs);
            try
            {
                decision = await counters.AdmitAsync(tenant, l, tokens, lease, timeout.Token);
            }
            catch (Exception e) when (IsOutage(e, http.RequestAborted))
            {
                return CountersDown(e);
            }
        }
        ProxyTelemetry.RateLimitDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
        Dictionary<string, string> headers = RateLimitHeaders.For(l, decision);
        if (!decision.Admitted)
        {
            ProxyTelemetry.RateLimited.Add(1, new TagList
            {
                { "tenant", tenant }, { "limit", LimitName(decision.Refusal) },
            });
            throw Refused(tenant, l, decision, tokens, headers);
        }
        RateLimitHeaders.Apply(http.Response.Headers, headers);
        double now = Admission.Seconds(clock.GetUtcNow());
        return new RateTicket(tenant, lease, l, tokens, Admission.PeriodStart(l, now));
    }

    /// <summary>Replaces the reservation with what the request used and frees its slot (errors are logged).</summary>
    public async Task SettleAsync(RateTicket ticket, long usedTokens)
    {
        using var timeout = new CancellationTokenSource(Math.Max(Options.CountersTimeoutMs, 5000));
        try
        {
            await counters.SettleAsync(ticket, usedTokens, timeout.Token);
        }
        catch (Exception e) when (IsOutage(e, CancellationToken.None))
        {
            ProxyTelemetry.RateLimitStoreErrors.Add(1);
            LogOutage(e, "a finished request's usage could not be counted");
        }
    }

    private RateTicket? CountersDown(Exception e)
    {
        ProxyTelemetry.RateLimitStoreErrors.Add(1);
        bool closed = Options.WhenCountersDown == CountersDownPolicy.Closed;
        LogOutage(e, closed ? "requests of limited tenants are refused (WhenCountersDown: closed)"
            : "requests are let through uncounted (WhenCountersDown: open)");
        if (!closed) return null;
        throw new ApiException(503, "the rate limiter's counters are unreachable; retry shortly", null,
            "rate_limiter_unavailable")
        { Headers = new Dictionary<string, string> { ["retry-after"] = "1" } };
    }

    private void LogOutage(Exception e, string consequence)
    {
        long now = Environment.TickCount64;
        long last = Interlocked.Read(ref _lastOutageLog);
        if (now - last < 30_000 || Interlocked.CompareExchange(ref _lastOutageLog, now, last) != last) return;
        log.LogWarning("the {Kind} rate-limit counters failed ({Message}); {Consequence}", counters.Kind,
            e.Message, consequence);
    }

    /// <summary>A failure of the counters themselves (the client leaving is not one).</summary>
    private static bool IsOutage(Exception e, CancellationToken client) =>
        !client.IsCancellationRequested && e is Npgsql.NpgsqlException or OperationCanceledException
            or TimeoutException or System.Net.Sockets.SocketException or IOException;

    private static ApiException Refused(string tenant, TenantLimits l, RateDecision d, long tokens,
        Dictionary<string, string> headers)
    {
        string wait = $"Please try again in {RateLimitHeaders.Duration(d.RetryAfterSeconds)}.";
        return d.Refusal switch
        {
            Refusal.Requests => new ApiException(429,
                $"Rate limit reached for tenant {tenant} on requests per min (RPM): Limit {l.RequestsPerMinute}. " +
                wait, null, "rate_limit_exceeded")
            { Type = "requests", Headers = headers },
            Refusal.Tokens => new ApiException(429,
                $"Rate limit reached for tenant {tenant} on tokens per min (TPM): Limit {l.TokensPerMinute}, " +
                $"Remaining {d.Snapshot.RemainingTokens}, Requested {tokens}. {wait}", null, "rate_limit_exceeded")
            {
                Type = "tokens", Headers = headers,
            },
            Refusal.Concurrency => new ApiException(429,
                $"Too many requests in flight for tenant {tenant}: Limit {l.ConcurrentRequests}. {wait}", null,
                "concurrency_limit_exceeded")
            { Type = "requests", Headers = headers },
            Refusal.Budget => new ApiException(429,
                $"Tenant {tenant} has used its token budget for this {l.BudgetPeriod.Name()} " +
                $"({l.TokenBudget} tokens, {d.Snapshot.BudgetRemaining} left, {tokens} requested); it renews at " +
                $"{d.Snapshot.BudgetResets:O}.", null, "insufficient_quota")
            {
                Type = "insufficient_quota", Headers = headers,
            },
            _ => new ApiException(429,
                $"Request too large for tenant {tenant}: it may use {tokens} tokens (prompt, soft prompt and " +
                $"max_tokens), over the whole {TooLargeLimit(l, tokens)}. Send a shorter prompt or a smaller " +
                "max_tokens.", "max_tokens",
                "request_too_large")
            { Type = "tokens", Headers = headers },
        };
    }

    private static string TooLargeLimit(TenantLimits l, long tokens) =>
        l.TokensPerMinute > 0 && tokens > l.TokensPerMinute
            ? $"limit of {l.TokensPerMinute} tokens per min (TPM)"
            : $"budget of {l.TokenBudget} tokens per {l.BudgetPeriod.Name()}";

    private static string LimitName(Refusal r) => r switch
    {
        Refusal.Requests => "requests",
        Refusal.Tokens => "tokens",
        Refusal.Concurrency => "concurrency",
        Refusal.Budget => "budget",
        _ => "too_large",
    };
}
