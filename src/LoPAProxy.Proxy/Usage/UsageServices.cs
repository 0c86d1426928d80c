using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Store;
using Microsoft.Extensions.DependencyInjection;

namespace LoPAProxy.Proxy.Usage;

/// <summary>DI registration of usage accounting: the recorder (flushed by a hosted service), what a request is
/// charged, and the tokens used so far for the rate limiter's budgets.</summary>
public static class UsageServices
{
    public static IServiceCollection AddLoPAUsage(this IServiceCollection services)
    {
        services.AddSingleton(sp => (IUsageStore)sp.GetRequiredService<ITenancyStore>());
        services.AddSingleton<UsageRecorder>();
        services.AddHostedService(sp => sp.GetRequiredService<UsageRecorder>());
        services.AddSingleton<UsedTokensSince>(sp => sp.GetRequiredService<UsageRecorder>().TokensSinceAsync);
        services.AddSingleton<RequestAccounting>();
        return services;
    }
}
