using System.CommandLine;
using LoPAProxy.Proxy;
using LoPAProxy.Proxy.Observability;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace LoPAProxy.Cli;

/// <summary>`lopa proxy --config proxy.json [--urls http://0.0.0.0:8080]`: the proxy alone, for deployments.</summary>
internal static class ProxyCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config")
        {
            Description = "YARP ReverseProxy + LoPA configuration",
            DefaultValueFactory = _ => "proxy.json",
        };
        var urls = new Option<string>("--urls")
        {
            Description = "addresses to listen on",
            DefaultValueFactory = _ => "http://127.0.0.1:8080",
        };
        var logFormat = LogFormatOption();
        var command = new Command("proxy",
            "Run the LoPA proxy from a configuration file (environment variables override it: LoPA__Tenants__acme__ApiKeys__0=...)") { config, urls, logFormat };
        command.SetAction(async (p, cancel) =>
        {
            string path = Path.GetFullPath(p.GetValue(config)!);
            if (!File.Exists(path)) throw new FileNotFoundException($"configuration not found: {path}");
            IConfiguration configuration = new ConfigurationBuilder().AddJsonFile(path,
                optional: false).AddEnvironmentVariables()
                .AddInMemoryCollection(LogFormatSetting(p.GetValue(logFormat))).Build();
            // Relative paths in the file (adapters, model files) mean relative to the file, wherever lopa is started.
            Directory.SetCurrentDirectory(Path.GetDirectoryName(path)!);
            var app = ProxyApp.Build(configuration, p.GetValue(urls)!);
            await app.StartAsync(cancel);
            Console.WriteLine($"proxy listening on {string.Join(", ", ManagementListener.PublicUrls(app))}");
            Console.WriteLine("metrics (management listener) on " +
                string.Join(", ", app.Services.GetRequiredService<ManagementListener>().Urls));
            await app.WaitForShutdownAsync(cancel);
            return 0;
        });
        return command;
    }

    /// <summary>--log-format json|text (default: json in containers, text elsewhere).</summary>
    internal static Option<string?> LogFormatOption() => new("--log-format")
    {
        Description = "json (one object per line; default in containers) or text (readable; default elsewhere)",
    };

    internal static Dictionary<string, string?> LogFormatSetting(string? format) =>
        format is null ? new() : new() { ["LoPA:LogFormat"] = format };
}
