using System.CommandLine;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Store;
using Microsoft.Extensions.Configuration;

namespace LoPAProxy.Cli;

/// <summary>
/// `lopa adapter import DIR`: adapters kept in folders ({tenant}/{adapter}/, or {adapter}/ with --tenant) into the
/// store a proxy serves from — the store of a proxy.json (and environment), or a SQLite file given directly.
/// Works while the proxy runs: new names are found on first use, and the proxy re-checks cached ones within
/// LoPA:Adapters:RevalidateSeconds.
/// </summary>
internal static class AdapterImportCommand
{
    public static Command Create()
    {
        var folder = new Argument<string>("folder") { Description = "the folder holding {tenant}/{adapter}/" };
        var config = new Option<string>("--config")
        {
            Description = "the proxy's configuration; its LoPA:Store is written to (environment overrides apply)",
            DefaultValueFactory = _ => "proxy.json",
        };
        var sqlite = new Option<string?>("--sqlite") { Description = "a SQLite store file instead of --config's" };
        var tenant = new Option<string?>("--tenant") { Description = "FOLDER holds {adapter}/ for this one tenant" };
        var version = new Option<string>("--version")
        {
            Description = "the version the imported adapters get (and activate)",
            DefaultValueFactory = _ => "1",
        };
        var command = new Command("import", "Import adapters kept in folders into the proxy's store")
        {
            folder, config, sqlite, tenant, version,
        };
        command.SetAction(async (p, cancel) =>
        {
            StoreOptions options = StoreOf(p.GetValue(config)!, p.GetValue(sqlite));
            string root = Path.GetFullPath(p.GetValue(folder)!);
            var outcomes = await FolderImport.ImportAsync(options, root, p.GetValue(version)!, p.GetValue(tenant),
                cancel);
            Print(outcomes);
            return outcomes.Any(o => o.Result is "invalid" or "conflict") ? 1 : 0;
        });
        return command;
    }

    /// <summary>The store: --sqlite, else LoPA:Store of the configuration file (relative paths from its
    /// folder).</summary>
    private static StoreOptions StoreOf(string configPath, string? sqlite)
    {
        if (sqlite is not null) return new StoreOptions { Kind = StoreKind.Sqlite, Path = Path.GetFullPath(sqlite) };
        string path = Path.GetFullPath(configPath);
        if (!File.Exists(path)) throw new FileNotFoundException($"configuration not found: {path} (or pass --sqlite)");
        IConfiguration configuration = new ConfigurationBuilder().AddJsonFile(path, optional: false)
            .AddEnvironmentVariables().Build();
        var options = new StoreOptions();
        configuration.GetSection("LoPA:Store").Bind(options);
        if (options.Kind == StoreKind.Sqlite)
        {
            string folder = Path.GetDirectoryName(path)!;
            options.Path = Path.GetFullPath(options.Path, folder);
        }

        return options;
    }

    private static void Print(IReadOnlyList<ImportOutcome> outcomes)
    {
        if (outcomes.Count == 0) Console.WriteLine("no adapter folders found");
        foreach (ImportOutcome o in outcomes)
        {
            string reference = $"{o.Tenant}/{o.Name}@{o.Version}";
            string detail = o.Detail is null ? "" : $": {o.Detail}";
            Console.WriteLine($"{o.Result,-10} {reference}{detail}");
        }
    }
}
