using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Yarp.ReverseProxy.Transforms;

namespace LoPAProxy.Proxy.Dialects;

/// <summary>Registers dialects by name (keyed singletons) and the response transform that maps native
/// answers back.</summary>
public static class DialectServices
{
    /// <summary>Adds <typeparamref name="T"/> under its <see cref="IDialectTraits.Name"/>.</summary>
    public static IServiceCollection AddBackendDialect<T>(this IServiceCollection services)
        where T : class, IBackendDialect, IDialectTraits
    {
        DialectCatalog catalog = services.FirstOrDefault(d => d.ServiceType == typeof(DialectCatalog))
            ?.ImplementationInstance as DialectCatalog ?? new DialectCatalog();
        services.TryAddSingleton(catalog);
        catalog.Add(T.Name, T.NeedsModel);
        services.AddKeyedSingleton<IBackendDialect, T>(T.Name);
        return services;
    }

    /// <summary>The dialects this proxy ships.</summary>
    public static IServiceCollection AddBackendDialects(this IServiceCollection services) => services
        .AddBackendDialect<VllmChatDialect>()
        .AddBackendDialect<VllmCompletionsDialect>()
        .AddBackendDialect<SglangDialect>()
        .AddBackendDialect<TensorRtLlmDialect>();

    /// <summary>The shipped dialects' catalogue, without a container (tools that validate configuration).</summary>
    public static DialectCatalog ShippedCatalog()
    {
        IServiceCollection services = new ServiceCollection().AddBackendDialects();
        return (DialectCatalog)services.Single(d => d.ServiceType == typeof(DialectCatalog)).ImplementationInstance!;
    }

    /// <summary>The response transform: a request whose dialect answers natively is answered through its
    /// <see cref="IDialectAnswer"/>.</summary>
    public static async ValueTask MapNativeAnswerAsync(ResponseTransformContext context)
    {
        if (context.HttpContext.Features.Get<IDialectAnswer>() is not { } answer || context.ProxyResponse is null)
            return;
        await answer.WriteAsync(context);
    }
}
