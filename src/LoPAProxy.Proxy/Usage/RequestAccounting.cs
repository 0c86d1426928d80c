using System.Diagnostics;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Store;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace LoPAProxy.Proxy.Usage;

/// <summary>
/// When a tenant's request has ended (its last byte sent, or the client gone): records its usage and settles its
/// limiter reservation with the same figure (<see cref="Charge"/>).
/// </summary>
public sealed class RequestAccounting(UsageRecorder recorder, RateLimiter limiter)
{
    public async Task CompleteAsync(HttpContext http)
    {
        if (http.Features.Get<RequestRecord>() is not { Tenant: { } tenant } record) return;
        IForwarderErrorFeature? forwarding = http.Features.Get<IForwarderErrorFeature>();
        bool failed = !record.RateLimited && (http.Response.StatusCode >= 400 || forwarding is not null);
        Charge charge = Charge.Of(record, http.Features.Get<AnswerMeter>(), http.Response.StatusCode,
            forwarding?.Error);
        long latencyMs = record.RateLimited ? 0 : (long)Stopwatch.GetElapsedTime(record.Started).TotalMilliseconds;
        recorder.Record(new UsageCounts(tenant, record.Adapter ?? "", 0, Requests: record.RateLimited ? 0 : 1,
            Errors: failed ? 1 : 0, RateLimited: record.RateLimited ? 1 : 0, charge.Prompt, charge.Completion,
            charge.Prompt > 0 ? record.SoftPromptRows : 0, latencyMs));
        if (record.Ticket is { } ticket) await limiter.SettleAsync(ticket, charge.Prompt + charge.Completion);
    }
}

/// <summary>
/// What one request is charged — usage recorded and tokens settled against the tenant's limits. Whatever reached
/// the model server is paid for, however the request ended:
/// <list type="bullet">
/// <item>the backend's usage fields when they arrived;</item>
/// <item>else, for a stream, the prompt reserved at admission plus one completion token per event relayed — also
/// when the client reset the connection or the proxy's timeout cut the stream (what was produced was sent);</item>
/// <item>a non-streamed request aborted after it was forwarded (client gone, proxy timeout) without an answer: the
/// whole reservation, since the backend may have generated all of it and the proxy cannot know;</item>
/// <item>nothing for a request refused here, refused by the backend (4xx/5xx answer) or never delivered to it.</item>
/// </list>
/// </summary>
public readonly record struct Charge(long Prompt, long Completion)
{
    public static Charge Of(RequestRecord record, AnswerMeter? meter, int status, ForwarderError? error)
    {
        if (record.RateLimited || meter is null || !record.Forwarded) return default;
        if (error is null && status >= 400) return default; // the backend refused it
        if (!ReachedBackend(error)) return default;
        long prompt = meter.PromptTokens ?? record.Reserved.Prompt;
        if (meter.CompletionTokens is { } reported) return new Charge(prompt, reported);
        if (record.Streaming) return new Charge(prompt, meter.Events);
        return new Charge(prompt, error is null ? 0 : record.Reserved.Completion);
    }

    /// <summary>
    /// Whether the backend had the whole request when forwarding ended this way (null: it answered). Errors in
    /// sending the request mean it never got it; every later error (timeouts, a client gone, a failure while the
    /// answer was relayed — YARP labels an exception in a response transform ResponseHeaders) means it did.
    /// </summary>
    private static bool ReachedBackend(ForwarderError? error) => error is not (ForwarderError.Request
        or ForwarderError.RequestCreation or ForwarderError.RequestBodyClient or ForwarderError.RequestBodyDestination
        or ForwarderError.RequestBodyCanceled or ForwarderError.NoAvailableDestinations);
}
