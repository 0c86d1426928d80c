using System.Collections.Concurrent;

namespace LoPAProxy.Proxy.Limits;

/// <summary>
/// Counters in this process's memory: the single-process default, no server needed. A new budget period starts
/// from the tokens the durable usage aggregates already hold for it, so a restart does not refill a budget.
/// </summary>
public sealed class LocalRateCounters(TimeProvider clock, UsedTokensSince usedSince) : IRateCounterStore
{
    private sealed class Slot
    {
        public RateCounters Counters = RateCounters.Empty;
    }

    private readonly ConcurrentDictionary<string, Slot> _tenants = new();

    public string Kind => "local";

    public Task PrepareAsync(CancellationToken cancel) => Task.CompletedTask;

    public async Task<RateDecision> AdmitAsync(string tenant, TenantLimits limits, long tokens, string lease,
        CancellationToken cancel)
    {
        Slot slot = _tenants.GetOrAdd(tenant, _ => new Slot());
        double now = Admission.Seconds(clock.GetUtcNow());
        long period = Admission.PeriodStart(limits, now);
        if (limits.TokenBudget > 0 && Volatile.Read(ref slot.Counters).BudgetPeriodStart != period)
            await StartPeriodAsync(slot, tenant, period, cancel);
        lock (slot)
        {
            RateDecision decision = Admission.Decide(limits, slot.Counters, tokens, now);
            slot.Counters = decision.Next;
            return decision;
        }
    }

    public Task SettleAsync(RateTicket ticket, long usedTokens, CancellationToken cancel)
    {
        Slot slot = _tenants.GetOrAdd(ticket.Tenant, _ => new Slot());
        double now = Admission.Seconds(clock.GetUtcNow());
        lock (slot)
        {
            slot.Counters = Admission.Settle(ticket.Limits, slot.Counters, ticket.ReservedTokens, usedTokens,
                ticket.BudgetPeriodStart, now);
        }

        return Task.CompletedTask;
    }

    private async Task StartPeriodAsync(Slot slot, string tenant, long period, CancellationToken cancel)
    {
        long used = await usedSince(tenant, DateTimeOffset.FromUnixTimeSeconds(period), cancel);
        lock (slot)
        {
            if (slot.Counters.BudgetPeriodStart != period)
                slot.Counters = slot.Counters with { BudgetPeriodStart = period, BudgetUsed = used };
        }
    }
}
