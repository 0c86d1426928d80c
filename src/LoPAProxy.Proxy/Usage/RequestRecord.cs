using System.Diagnostics;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.SoftPrompts;

namespace LoPAProxy.Proxy.Usage;

/// <summary>What one request did, for its log line and its usage (never keys or prompt text).</summary>
public sealed class RequestRecord
{
    public string? Tenant { get; set; }
    public string? Adapter { get; set; }
    public SoftPromptTimings Timings { get; } = new();
    public long BytesAdded { get; set; }
    public int SoftPromptRows { get; set; }
    public bool Streaming { get; set; }
    /// <summary>The tokens reserved at admission (the usage stand-in when a backend reports none).</summary>
    public TokenReservation Reserved { get; set; }
    /// <summary>The limiter's claim, returned when the answer has ended.</summary>
    public RateTicket? Ticket { get; set; }
    public bool RateLimited { get; set; }
    /// <summary>The request was handed to the backend (from then on, what it produced is charged).</summary>
    public bool Forwarded { get; set; }
    /// <summary>When the request arrived here (Stopwatch ticks).</summary>
    public long Started { get; } = Stopwatch.GetTimestamp();
}
