using Microsoft.Extensions.DependencyInjection;
using Serilog.Core;
using Serilog.Events;

namespace LoPAProxy.Proxy.Hosting;

/// <summary>
/// The proxy's minimum log level, switchable at run time: `lopa up` raises it to Warning while it makes its own
/// set-up calls (tenant, key, adapter), so the terminal shows progress and settings, not those calls' log lines.
/// </summary>
public sealed class ProxyLogLevel
{
    public LoggingLevelSwitch Switch { get; } = new(LogEventLevel.Information);

    public static LoggingLevelSwitch Of(IServiceProvider services) =>
        services.GetRequiredService<ProxyLogLevel>().Switch;
}
