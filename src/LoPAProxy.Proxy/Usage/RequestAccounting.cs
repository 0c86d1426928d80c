using System.Diagnostics;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Pipeline;
using LoPAProxy.Proxy.Store;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace LoPAProxy.Proxy.Usage;

/// <summary>
/// When a tenant's request has ended (its last byte sent, or the client gone): records its usage — the backend's
/// usage fields; without them, the prompt tokens reserved at admission and one completion token per stream event —
/// and settles its limiter reservation with the same figure.
/// </summary>
public sealed class RequestAccounting(UsageRecorder recorder, RateLimiter limiter)
{
    public async Task CompleteAsync(HttpContext http)
    {
        if (http.Features.Get<RequestRecord>() is not { Tenant: { } tenant } record) return;
        bool failed = !record.RateLimited && (http.Response.StatusCode >= 400
            || http.Features.Get<IForwarderErrorFeature>() is not null);
        bool answered = !record.RateLimited && !failed;
        AnswerMeter? meter = http.Features.Get<AnswerMeter>();
        long prompt = 0, completion = 0;
        if (answered && meter is not null)
        {
            prompt = meter.PromptTokens ?? record.Reserved.Prompt;
            completion = meter.CompletionTokens ?? (meter.HasUsage ? 0 : meter.Events);
        }
        long latencyMs = record.RateLimited ? 0 : (long)Stopwatch.GetElapsedTime(record.Started).TotalMilliseconds;
        recorder.Record(new UsageCounts(tenant, record.Adapter ?? "", 0, Requests: record.RateLimited ? 0 : 1,
            Errors: failed ? 1 : 0, RateLimited: record.RateLimited ? 1 : 0, prompt, completion,
            answered ? record.SoftPromptRows : 0, latencyMs));
        if (record.Ticket is { } ticket) await limiter.SettleAsync(ticket, prompt + completion);
    }
}
