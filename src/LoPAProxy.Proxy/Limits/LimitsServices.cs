using LoPAProxy.Proxy.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Limits;

/// <summary>DI registration of rate limits (the tokens already used come from <see cref="UsedTokensSince"/>, which
/// usage accounting provides).</summary>
public static class LimitsServices
{
    public static IServiceCollection AddLoPALimits(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<TenantLimitResolver>();
        services.AddSingleton(CounterStore);
        services.AddSingleton<RateLimiter>();
        return services;
    }

    private static IRateCounterStore CounterStore(IServiceProvider sp)
    {
        LoPAOptions o = sp.GetRequiredService<IOptions<LoPAOptions>>().Value;
        TimeProvider clock = sp.GetRequiredService<TimeProvider>();
        UsedTokensSince usedSince = sp.GetRequiredService<UsedTokensSince>();
        if (o.RateLimits.EffectiveCounters(o.Store) == CountersKind.Local)
            return new LocalRateCounters(clock, usedSince);
        string connection = o.RateLimits.ConnectionString ?? o.Store.ConnectionString!;
        return new PostgresRateCounters(connection, clock, usedSince,
            TimeSpan.FromSeconds(o.RateLimits.LeaseSeconds), o.RateLimits.MaxConnections);
    }
}
