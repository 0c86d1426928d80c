using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.ModelServer;
using LoPAProxy.Proxy;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace LoPAProxy.Cli;

/// <summary>
/// `lopa up`: the whole product with embedded defaults — the reference model server with stories260K, the proxy in
/// front of it with the SQLite store (in the state folder) and the admin API on, a demo tenant created and given a
/// key through the admin API, the demo adapter uploaded through the tenant API — until Ctrl-C or SIGTERM. With
/// --detach it runs in the background and `lopa env` prints the lines to load into a shell; `lopa down` stops it.
/// </summary>
internal static class UpCommand
{
    private const string DemoTenant = "demo", EnvFile = "env", PidFile = "up.pid", LogFile = "up.log";
    /// <summary>Set for the background child of `lopa up --detach`, whose output goes to up.log: it prints no
    /// key (the parent shows them on its terminal).</summary>
    private const string DetachedVariable = "LOPA_UP_DETACHED";

    public static Command Create()
    {
        var port = new Option<int>("--port")
        {
            Description = "proxy port (0 = any free port)",
            DefaultValueFactory = _ => 8080,
        };
        var modelPort = new Option<int>("--model-port")
        {
            Description = "reference model server port (0 = any free port)",
            DefaultValueFactory = _ => 8001,
        };
        var model = new Option<string?>("--model")
        {
            Description = "model to serve (default: stories260K from ../shared/models, or LOPA_MODEL_PATH)",
        };
        var state = new Option<string?>("--state")
        {
            Description = "where the store, keys and logs live (default: ~/.local/share/lopa)",
        };
        var logFormat = ProxyCommand.LogFormatOption();
        var detach = new Option<bool>("--detach")
        {
            Description = "run in the background; `lopa env` prints the settings, `lopa down` stops it",
        };
        var command = new Command("up",
            "Run the reference model server, the proxy and a demo tenant with embedded defaults")
            { port, modelPort, model, state, detach, logFormat };
        command.SetAction(async (p, cancel) =>
        {
            OwnerOnly.ForThisProcess();
            string stateDir = OwnerOnly.Folder(StateDir(p.GetValue(state)));
            if (p.GetValue(detach)) return await DetachAsync(stateDir, cancel);
            string modelPath = p.GetValue(model) ?? Environment.GetEnvironmentVariable("LOPA_MODEL_PATH")
                ?? FindStories()
                ?? throw new FileNotFoundException("no model: pass --model or set LOPA_MODEL_PATH (stories260K is looked for in ../shared/models)");
            return await RunAsync(stateDir, modelPath, p.GetValue(port), p.GetValue(modelPort), p.GetValue(logFormat),
                cancel);
        });
        return command;
    }

    /// <summary>`lopa env`: the OPENAI_* lines of the running (or last) `lopa up`, as shell exports.</summary>
    public static Command Env()
    {
        var state = new Option<string?>("--state") { Description = "the state folder of `lopa up`" };
        var command = new Command("env",
            "Print `export` lines for the running `lopa up`: eval \"$(lopa env)\"") { state };
        command.SetAction(p =>
        {
            string dir = StateDir(p.GetValue(state)), file = Path.Combine(dir, EnvFile);
            if (!File.Exists(file) || !RecordedProcessRuns(dir))
                throw new FileNotFoundException("no `lopa up` is running here (start one with lopa up --detach)");
            foreach (string line in File.ReadAllLines(file)) Console.WriteLine("export " + line);
            return 0;
        });
        return command;
    }

    /// <summary>`lopa down`: stops a detached `lopa up` (SIGTERM: in-flight requests finish).</summary>
    public static Command Down()
    {
        var state = new Option<string?>("--state") { Description = "the state folder of `lopa up`" };
        var command = new Command("down", "Stop a `lopa up --detach`") { state };
        command.SetAction(p =>
        {
            string pidFile = Path.Combine(StateDir(p.GetValue(state)), PidFile);
            if (!File.Exists(pidFile)) throw new FileNotFoundException("no detached `lopa up` is recorded here");
            using Process process = Process.GetProcessById(int.Parse(File.ReadAllText(pidFile).Trim(),
                CultureInfo.InvariantCulture));
            Signals.Terminate(process.Id);
            if (!process.WaitForExit(30_000))
                throw new IOException($"lopa up (pid {process.Id}) did not stop within 30 s");
            File.Delete(pidFile);
            Console.WriteLine("stopped.");
            return 0;
        });
        return command;
    }

    private static string StateDir(string? given)
    {
        // Create: without it .NET answers "" when ~/.local/share does not exist yet (a fresh home or container),
        // and the state would land in the working folder.
        string data = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData,
            Environment.SpecialFolderOption.Create);
        string dir = given ?? Path.Combine(data, "lopa");
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static async Task<int> RunAsync(string stateDir, string modelPath, int port, int modelPort,
        string? logFormat,
        CancellationToken cancel)
    {
        Console.WriteLine("starting the model server …");
        var serverOptions = new ModelServerOptions
        {
            ModelPath = modelPath, Port = modelPort, ModelCacheDirectory = Path.Combine(stateDir, "models"),
        };
        WebApplication server = ModelServerApp.Build(serverOptions);
        await server.StartAsync(cancel);
        var served = server.Services.GetRequiredService<ModelServer.Generation.ServedModel>();
        string adminKey = Secret(stateDir, "admin.key", "lopa-admin-", out bool newAdminKey);
        Console.WriteLine("starting the proxy …");
        WebApplication proxy = ProxyApp.Build(ProxyConfiguration(stateDir, modelPath, served, server.Urls.First(),
            adminKey, logFormat),
            $"http://127.0.0.1:{port}");
        // Set-up calls (tenant, key, adapter) are lopa up's own: keep their log lines off the terminal.
        var logLevel = LoPAProxy.Proxy.Hosting.ProxyLogLevel.Of(proxy.Services);
        logLevel.MinimumLevel = Serilog.Events.LogEventLevel.Warning;
        await proxy.StartAsync(cancel);
        string proxyUrl = Proxy.Observability.ManagementListener.PublicUrls(proxy)[0];
        string adminKeyFile = Path.Combine(stateDir, "admin.key");
        bool detached = Environment.GetEnvironmentVariable(DetachedVariable) == "1";
        if (newAdminKey && !detached)
            Console.WriteLine($"admin key (shown once; kept owner-only in {adminKeyFile}): {adminKey}");
        string key = await DemoTenantAsync(proxyUrl, adminKey, stateDir, cancel);
        string adapterName = await DemoAdapterAsync(proxyUrl, key, stateDir, served.HiddenSize, served.Name, cancel);
        string baseUrl = proxyUrl + "/v1", modelName = $"{served.Name}:{adapterName}";
        Console.WriteLine($"LoPAProxy is up: proxy {proxyUrl} → model server {server.Urls.First()} ({served.Name}), " +
            $"demo adapter '{adapterName}' (minilm encoder)");
        string[] settings = { $"OPENAI_BASE_URL={baseUrl}", $"OPENAI_API_KEY={key}", $"LOPA_MODEL={modelName}",
            $"LOPA_URL={proxyUrl}" };
        OwnerOnly.Write(Path.Combine(stateDir, EnvFile), string.Join("\n", settings) + "\n");
        string shownKey = detached ? "$OPENAI_API_KEY" : key;
        foreach (string line in settings[..3]) Console.WriteLine(line.Replace(key, shownKey, StringComparison.Ordinal));
        Console.WriteLine($"curl -s {baseUrl}/chat/completions -H \"Authorization: Bearer {shownKey}\" " +
            "-H 'Content-Type: application/json' " +
            $"-d '{{\"model\":\"{modelName}\",\"messages\":[{{\"role\":\"user\",\"content\":\"a gorgeous, witty, seductive movie. Sentiment:\"}}],\"max_tokens\":6}}'");
        Console.WriteLine($"web console: {proxyUrl}/console/ (sign in with OPENAI_API_KEY, or the admin key)");
        Console.WriteLine("Ctrl-C or SIGTERM stops everything.");
        logLevel.MinimumLevel = Serilog.Events.LogEventLevel.Information;
        try
        {
            await proxy.WaitForShutdownAsync(cancel);
        }
        catch (OperationCanceledException)
        {
        }
        // Not the cancelled token: stopping must run to its end (drain, then dispose) after Ctrl-C.
        await proxy.StopAsync(CancellationToken.None);
        await server.StopAsync(CancellationToken.None);
        File.Delete(Path.Combine(stateDir, EnvFile)); // its settings point at nothing now
        Console.WriteLine("stopped.");
        return 0;
    }

    /// <summary>False when a detached `lopa up` was recorded here and its process is gone (killed, crashed).</summary>
    private static bool RecordedProcessRuns(string stateDir)
    {
        string pidFile = Path.Combine(stateDir, PidFile);
        if (!File.Exists(pidFile)) return true; // a foreground `lopa up` removes its settings when it stops
        if (!int.TryParse(File.ReadAllText(pidFile).Trim(), out int pid)) return false;
        try
        {
            using Process process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static IConfiguration ProxyConfiguration(string stateDir, string modelPath,
        ModelServer.Generation.ServedModel served,
        string backend, string adminKey, string? logFormat)
    {
        string hidden = served.HiddenSize.ToString(CultureInfo.InvariantCulture);
        var settings = new Dictionary<string, string?>
        {
            ["ReverseProxy:Routes:chat:ClusterId"] = "chat",
            ["ReverseProxy:Routes:chat:Match:Path"] = "/v1/chat/completions",
            ["ReverseProxy:Routes:completions:ClusterId"] = "completions",
            ["ReverseProxy:Routes:completions:Match:Path"] = "/v1/completions",
            ["ReverseProxy:Routes:models:ClusterId"] = "chat", ["ReverseProxy:Routes:models:Match:Path"] = "/v1/models",
            ["ReverseProxy:Clusters:chat:Destinations:model:Address"] = backend,
            ["ReverseProxy:Clusters:completions:Destinations:model:Address"] = backend,
            ["LoPA:Clusters:chat:Dialect"] = "vllm-chat", ["LoPA:Clusters:chat:Model"] = served.Name,
            ["LoPA:Clusters:chat:HiddenSize"] = hidden, ["LoPA:Clusters:chat:ModelPath"] = modelPath,
            ["LoPA:Clusters:completions:Dialect"] = "vllm-completions",
            ["LoPA:Clusters:completions:Model"] = served.Name,
            ["LoPA:Clusters:completions:HiddenSize"] = hidden, ["LoPA:Clusters:completions:ModelPath"] = modelPath,
            ["LoPA:Encoders:0"] = "minilm", ["LoPA:EncoderFiles:FoundationModel"] = modelPath,
            ["LoPA:Store:Kind"] = "sqlite", ["LoPA:Store:Path"] = Path.Combine(stateDir, "lopa.db"),
            ["LoPA:AdminKey"] = adminKey,
        };
        return new ConfigurationBuilder().AddInMemoryCollection(settings).AddEnvironmentVariables()
            .AddInMemoryCollection(ProxyCommand.LogFormatSetting(logFormat)).Build();
    }

    /// <summary>The demo tenant, created through the admin API on first run; its key issued once and kept
    /// owner-only.</summary>
    private static async Task<string> DemoTenantAsync(string proxyUrl, string adminKey, string stateDir,
        CancellationToken cancel)
    {
        string keyFile = Path.Combine(stateDir, "demo.key");
        using HttpClient admin = Client(proxyUrl, adminKey);
        using HttpResponseMessage tenants = await admin.GetAsync("/admin/tenants", cancel);
        await Ensure(tenants, "list tenants");
        bool exists = JsonDocument.Parse(await tenants.Content.ReadAsStringAsync(cancel)).RootElement.GetProperty("data")
            .EnumerateArray().Any(t => t.EnumerateObject().Any(p => p.Name.Equals("name",
                StringComparison.OrdinalIgnoreCase)
                && p.Value.GetString() == DemoTenant));
        if (exists && File.Exists(keyFile)) return File.ReadAllText(keyFile).Trim();
        if (!exists)
        {
            await Ensure(await admin.PostAsJsonAsync("/admin/tenants", new { name = DemoTenant }, cancel),
            "create the demo tenant");
        }

        using HttpResponseMessage issued = await admin.PostAsync($"/admin/tenants/{DemoTenant}/keys", null, cancel);
        await Ensure(issued, "issue the demo key");
        using JsonDocument issuedKey = JsonDocument.Parse(await issued.Content.ReadAsStringAsync(cancel));
        string key = issuedKey.RootElement.GetProperty("key").GetString()!;
        OwnerOnly.Write(keyFile, key);
        return key;
    }

    /// <summary>
    /// The demo adapter through the tenant API: the shipped SST-2-trained LoPA adapter (MiniLM encoder) when it fits
    /// the served model, else one made once with the paper's initialisation (untrained). Uploaded when absent.
    /// </summary>
    private static async Task<string> DemoAdapterAsync(string proxyUrl, string key, string stateDir, int hidden,
        string baseModel,
        CancellationToken cancel)
    {
        bool shippedFits = File.Exists(Path.Combine(ShippedAdapter, LopaAdapter.ConfigFile))
            && LopaAdapter.Load(ShippedAdapter).Config is { } shipped && shipped.TokenDim == hidden
                && shipped.Encoder == "minilm";
        string name = shippedFits ? "sst2-lopa" : "demo-minilm";
        using HttpClient tenant = Client(proxyUrl, key);
        using HttpResponseMessage existing = await tenant.GetAsync($"/v1/adapters/{name}", cancel);
        if (existing.IsSuccessStatusCode) return name;
        string source = shippedFits ? ShippedAdapter : FreshAdapter(stateDir, hidden, baseModel);
        var form = new MultipartFormDataContent
        {
            { new StringContent(name), "name" }, { new StringContent("1"), "version" },
            { await FileContentAsync(source, LopaAdapter.ConfigFile, cancel), "config", LopaAdapter.ConfigFile },
            { await FileContentAsync(source, LopaAdapter.WeightsFile, cancel), "weights", LopaAdapter.WeightsFile },
        };
        await Ensure(await tenant.PostAsync("/v1/adapters", form, cancel), "upload the demo adapter");
        return name;
    }

    private static async Task<ByteArrayContent> FileContentAsync(string directory,
        string file, CancellationToken cancel) =>
        new(await File.ReadAllBytesAsync(Path.Combine(directory, file), cancel));

    private static string FreshAdapter(string stateDir, int hidden, string baseModel)
    {
        string dir = Path.Combine(stateDir, "demo-adapter");
        var config = new AdapterConfig
        {
            BaseModel = baseModel, NumVirtualTokens = 10, TokenDim = hidden, Rank = 4, HiddenSize = 256, Encoder = "minilm",
            EncoderDim = EncoderFactory.KnownDim("minilm")!.Value,
        };
        LopaAdapter.CreateRandom(config, seed: 1).SaveDirectory(dir);
        return dir;
    }

    /// <summary>Starts `lopa up` again in its own session with output to up.log, waits for its settings, prints
    /// them and, when this run made it, the admin key — here, on the terminal that ran it, never into the
    /// log.</summary>
    private static async Task<int> DetachAsync(string stateDir, CancellationToken cancel)
    {
        string env = Path.Combine(stateDir, EnvFile), log = Path.Combine(stateDir, LogFile);
        File.Delete(env);
        bool newAdminKey = !File.Exists(Path.Combine(stateDir, "admin.key"));
        string[] args = Environment.GetCommandLineArgs().Skip(1).Where(a => a != "--detach").ToArray();
        string self = Environment.ProcessPath!;
        bool viaDotnet = Path.GetFileNameWithoutExtension(self) == "dotnet";
        // The child writes its whole log straight into up.log (owner-only, made here), also after this process
        // has gone: setsid (its own session) → sh, which opens the log and execs lopa in place.
        OwnerOnly.Create(log).Dispose();
        var psi = new ProcessStartInfo(File.Exists("/usr/bin/setsid") ? "/usr/bin/setsid" : "/bin/sh")
        {
            UseShellExecute = false,
        };
        if (psi.FileName != "/bin/sh") psi.ArgumentList.Add("/bin/sh");
        foreach (string a in new[] { "-c", "exec \"$@\" >>\"$LOPA_UP_LOG\" 2>&1 </dev/null", "lopa-up", self })
            psi.ArgumentList.Add(a);
        if (viaDotnet) psi.ArgumentList.Add(Environment.GetCommandLineArgs()[0]);
        foreach (string a in args) psi.ArgumentList.Add(a);
        psi.Environment[DetachedVariable] = "1";
        psi.Environment["LOPA_UP_LOG"] = log;
        using Process child = Process.Start(psi)!;
        for (int i = 0; i < 1200 && !File.Exists(env); i++)
        {
            if (child.HasExited)
                throw new InvalidOperationException($"lopa up stopped (exit {child.ExitCode}); see {log}");
            await Task.Delay(100, cancel);
        }
        if (!File.Exists(env)) throw new TimeoutException($"lopa up did not come up within 120 s; see {log}");
        OwnerOnly.Write(Path.Combine(stateDir, PidFile), child.Id.ToString(CultureInfo.InvariantCulture));
        foreach (string line in File.ReadAllLines(env)) Console.WriteLine(line);
        string adminKeyFile = Path.Combine(stateDir, "admin.key");
        if (newAdminKey)
        {
            Console.WriteLine($"admin key (shown once; kept owner-only in {adminKeyFile}): "
                + File.ReadAllText(adminKeyFile).Trim());
        }

        Console.WriteLine($"running in the background (pid {child.Id}, log {log}); "
            + "eval \"$(lopa env)\" loads these; lopa down stops it");
        return 0;
    }

    private static HttpClient Client(string baseUrl, string key)
    {
        var c = new HttpClient { BaseAddress = new Uri(baseUrl) };
        c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return c;
    }

    private static async Task Ensure(HttpResponseMessage response, string what)
    {
        if (response.IsSuccessStatusCode) return;
        string body = await response.Content.ReadAsStringAsync();
        throw new InvalidOperationException($"could not {what}: {(int)response.StatusCode} {body}");
    }

    private static string? FindStories()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            foreach (string root in new[] { Path.Combine(d.FullName, "shared"), Path.Combine(d.FullName, "..",
                "shared") })
            {
                string path = Path.Combine(root, "models", "stories260K", "stories260K.bin");
                if (File.Exists(path)) return Path.GetFullPath(path);
            }
        }

        return null;
    }

    /// <summary>A random secret made once and kept owner-only in the state folder.</summary>
    private static string Secret(string stateDir, string file, string prefix, out bool created)
    {
        string path = Path.Combine(stateDir, file);
        created = !File.Exists(path);
        if (!created) return File.ReadAllText(path).Trim();
        string secret = prefix + Convert.ToHexString(RandomNumberGenerator.GetBytes(24)).ToLowerInvariant();
        OwnerOnly.Write(path, secret);
        return secret;
    }

    /// <summary>Where the build puts the shipped demo adapter (assets/demo-adapter: LoPA trained on SST-2 by lopa
    /// train).</summary>
    private static string ShippedAdapter => Path.Combine(AppContext.BaseDirectory, "demo-adapter");
}
