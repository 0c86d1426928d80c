using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Store;
using LoPAProxy.Proxy.Usage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Limits;

/// <summary>DI registration of rate limits and usage accounting.</summary>
public static class LimitsServices
{
    public static IServiceCollection AddLoPALimits(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(sp => (IUsageStore)sp.GetRequiredService<IAdapterStore>());
        services.AddSingleton<UsageRecorder>();
        services.AddHostedService(sp => sp.GetRequiredService<UsageRecorder>());
        services.AddSingleton<TenantLimitResolver>();
        services.AddSingleton(CounterStore);
        services.AddSingleton<RateLimiter>();
        services.AddSingleton<RequestAccounting>();
        return services;
    }

    private static IRateCounterStore CounterStore(IServiceProvider sp)
    {
        LoPAOptions o = sp.GetRequiredService<IOptions<LoPAOptions>>().Value;
        TimeProvider clock = sp.GetRequiredService<TimeProvider>();
        UsageRecorder usage = sp.GetRequiredService<UsageRecorder>();
        if (o.RateLimits.CountersKind(o.Store) == "local") return new LocalRateCounters(clock, usage.TokensSinceAsync);
        string connection = o.RateLimits.ConnectionString ?? o.Store.ConnectionString!;
        return new PostgresRateCounters(connection, clock, usage.TokensSinceAsync,
            TimeSpan.FromSeconds(o.RateLimits.LeaseSeconds), o.RateLimits.MaxConnections);
    }
}
