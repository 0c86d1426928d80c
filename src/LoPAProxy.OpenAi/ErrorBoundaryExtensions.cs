using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace LoPAProxy.OpenAi;

/// <summary>Registration of the boundary.</summary>
public static class ErrorBoundaryExtensions
{
    /// <summary>Adds an app's own exception mapping (any number; the first that answers wins).</summary>
    public static IServiceCollection AddApiErrorMapper<T>(this IServiceCollection services)
        where T : class, IApiErrorMapper => services.AddSingleton<IApiErrorMapper, T>();

    /// <summary>The boundary, to be used before anything that can fail.</summary>
    public static IApplicationBuilder UseOpenAiErrors(this IApplicationBuilder app) =>
        app.UseMiddleware<ErrorBoundary>();
}
