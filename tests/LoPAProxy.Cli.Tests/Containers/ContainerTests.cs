using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Cli.Tests.Containers;

/// <summary>
/// #23: the images docker/build.sh makes, run as an operator runs them — podman as root on this kind of machine,
/// non-root users inside, read-only roots, state on volumes; the reference stack from docker/compose.reference.yaml
/// under podman-compose, called by the official openai client. Skipped, with the reason, only where podman cannot run.
/// </summary>
public class ContainerTests(ContainerImages images) : IClassFixture<ContainerImages>
{
    private const string AcmeKey = "acme-container-key-0123456789";

    [SkippableFact]
    public void The_proxy_image_answers_its_commands_as_a_small_non_root_image()
    {
        SkipWithoutPodman();
        images.EnsureBuilt();
        Podman.Result help = Podman.Run("run", "--rm", ContainerImages.Proxy, "--help");
        Assert.Contains("lopa — LoPA soft-prompt proxy", help.Stdout);
        Podman.Result adapter = Podman.Run("run", "--rm", ContainerImages.Proxy, "adapter", "--help");
        Assert.True(adapter.ExitCode == 0, adapter.Output);
        Assert.Contains("Create, inspect and convert LoPA adapters", adapter.Stdout);
        Assert.Equal("10001", Inspect(ContainerImages.Proxy, "{{.Config.User}}"));
        long bytes = long.Parse(Inspect(ContainerImages.Proxy, "{{.Size}}"), CultureInfo.InvariantCulture);
        Assert.True(bytes <= 450_000_000, $"the CPU proxy image is {bytes / 1e6:F0} MB (the goal is 450)");
        Assert.DoesNotContain("libtorch", Podman.Run("run", "--rm", "--entrypoint=/bin/ls", ContainerImages.Proxy,
            "/app").Stdout);
    }

    [SkippableFact]
    public async Task The_proxy_serves_healthz_as_uid_10001_on_a_read_only_root_with_a_state_volume()
    {
        SkipWithoutPodman();
        images.EnsureBuilt();
        string name = "lopa-ct-" + Guid.NewGuid().ToString("N")[..8];
        int port = Podman.FreePort();
        try
        {
            Podman.Result started = Podman.Run("run", "-d", "--name", name, "--read-only",
                "-v", $"{name}:/var/lib/lopa", "-p", $"127.0.0.1:{port}:8080", ContainerImages.Proxy);
            Assert.True(started.ExitCode == 0, started.Output);
            Assert.True(await Podman.WaitFor200Async($"http://127.0.0.1:{port}/healthz", 60),
                Podman.Run("logs", name).Output);
            Assert.Equal("10001", Podman.Run("exec", name, "id", "-u").Stdout.Trim());
            Podman.Result health = Podman.Run("healthcheck", "run", name);
            Assert.True(health.ExitCode == 0, health.Output);
            Assert.Contains("lopa.db", Podman.Run("exec", name, "ls", "/var/lib/lopa").Stdout);
        }
        finally
        {
            Podman.Run("rm", "-f", name);
            Podman.Run("volume", "rm", "-f", name);
        }
    }

    /// <summary>Bad deployments are one clear line and exit code 1: a read-only state volume, a config path that does
    /// not exist, a store that cannot be opened — never a stack trace or a crash.</summary>
    [SkippableTheory]
    [InlineData("read-only state", "--read-only|--tmpfs|/var/lib/lopa:ro", "",
        "lopa: the store cannot be opened")]
    [InlineData("missing config", "--read-only", "proxy|--config|/etc/lopa/missing.json",
        "lopa: configuration not found: /etc/lopa/missing.json")]
    [InlineData("store path", "--read-only|-e|LoPA__Store__Path=/nowhere/lopa.db", "",
        "lopa: the store cannot be opened (the SQLite file /nowhere/lopa.db)")]
    public void A_bad_deployment_is_one_clear_line_and_exit_code_1(string what, string runOptions, string command,
        string line)
    {
        SkipWithoutPodman();
        images.EnsureBuilt();
        var args = new List<string> { "run", "--rm" };
        args.AddRange(runOptions.Split('|'));
        args.Add(ContainerImages.Proxy);
        if (command.Length > 0) args.AddRange(command.Split('|'));
        Podman.Result run = Podman.Run([.. args]);
        Assert.True(run.ExitCode == 1, $"{what}: exit {run.ExitCode}\n{run.Output}");
        Assert.Contains(line, run.Stderr);
        Assert.DoesNotContain("   at ", run.Output); // no stack trace
    }

    [SkippableFact]
    public async Task The_reference_stack_answers_the_openai_client_with_a_soft_prompt_and_keeps_state()
    {
        SkipWithoutPodman();
        images.EnsureBuilt();
        string project = "lopa-ct-" + Guid.NewGuid().ToString("N")[..8];
        int port = Podman.FreePort();
        string baseUrl = $"http://127.0.0.1:{port}";
        var environment = new Dictionary<string, string>
        {
            ["LOPA_MODELS"] = SharedFiles.Path_("models", "stories260K"), ["LOPA_ACME_KEY"] = AcmeKey,
            ["LOPA_PORT"] = port.ToString(CultureInfo.InvariantCulture),
        };
        try
        {
            Compose(project, environment, "up", "-d");
            Assert.True(await Podman.WaitFor200Async(baseUrl + "/readyz", 120), Logs(project));
            using HttpClient client = TenantClient(baseUrl);
            await UploadDemoAdapterAsync(client);
            JsonElement answer = RunOpenAiClient(baseUrl, "stories260K:sst2");
            Assert.False(string.IsNullOrWhiteSpace(answer.GetProperty("chat").GetString()));
            Assert.Equal("stories260K:sst2", answer.GetProperty("retrieved").GetProperty("id").GetString());
            // The soft prompt reached the model server: 10 more prompt rows than the same call without the adapter.
            int withAdapter = answer.GetProperty("chatUsage").GetProperty("prompt_tokens").GetInt32();
            Assert.Equal(await PromptTokensAsync(client, baseUrl, "stories260K") + 10, withAdapter);

            // A new proxy container on the same volume serves the adapter uploaded through the old one.
            Podman.Result removed = Podman.Run("rm", "-f", $"{project}_proxy_1");
            Assert.True(removed.ExitCode == 0, removed.Output);
            Compose(project, environment, "up", "-d");
            Assert.True(await Podman.WaitFor200Async(baseUrl + "/readyz", 120), Logs(project));
            Assert.Contains("\"stories260K:sst2\"", await client.GetStringAsync(baseUrl + "/v1/models"));
            Assert.Equal(withAdapter, await PromptTokensAsync(client, baseUrl, "stories260K:sst2"));
        }
        finally
        {
            Compose(project, environment, "down", "-v");
        }
    }

    /// <summary>
    /// The Deployment from `kubectl kustomize deploy/` under podman kube play: an overlay (written per run under
    /// .artifacts) only names the local image, one replica, and a ConfigMap whose backend is a reference model server
    /// container and whose store is PostgreSQL in a container of its own; the keys come from a podman secret named as
    /// the Deployment expects. The pod answers /readyz (backend, encoder and store ready) on its read-only root as uid
    /// 10001.
    /// </summary>
    [SkippableFact]
    public async Task The_kubernetes_deployment_runs_under_kube_play_against_postgresql_and_answers_readyz()
    {
        SkipWithoutPodman();
        Skip.If(!Kubectl(out string why), why);
        images.EnsureBuilt();
        Podman.Result pgImage = Podman.Exec("bash", ["tests/LoPAProxy.Cli.Tests/Containers/make-postgres-image.sh"],
            null, 600);
        Assert.True(pgImage.ExitCode == 0, pgImage.Output);
        string id = Guid.NewGuid().ToString("N")[..8];
        string postgres = $"lopa-ct-pg-{id}", modelServer = $"lopa-ct-ms-{id}";
        string overlay = Path.Combine(Podman.RepoRoot, ".artifacts", "kube-test", id);
        string manifest = Path.Combine(overlay, "all.yaml");
        try
        {
            Assert.Equal(0, Podman.Run("run", "-d", "--name", postgres, "localhost/lopa-postgres-test:15").ExitCode);
            Assert.Equal(0, Podman.Run("run", "-d", "--name", modelServer, "--read-only", "-v",
                SharedFiles.Path_("models", "stories260K") + ":/models:ro", ContainerImages.ModelServer, "serve-model",
                "--model", "/models/stories260K.bin", "--host", "0.0.0.0", "--port", "8000").ExitCode);
            WriteOverlay(overlay, AddressOf(modelServer));
            Podman.Result kustomized = Podman.Exec("kubectl", ["kustomize", overlay], null, 60);
            Assert.True(kustomized.ExitCode == 0, kustomized.Output);
            await File.WriteAllTextAsync(manifest, kustomized.Stdout);
            CreateKeysSecret(overlay, $"Host={AddressOf(postgres)};Database=postgres;Username=lopa");
            Podman.Result played = Podman.Run("kube", "play", manifest);
            Assert.True(played.ExitCode == 0, played.Output);
            const string Proxy = "lopaproxy-pod-0-proxy";
            Assert.True(await ProbeInsideAsync(Proxy, "http://127.0.0.1:8080/readyz", 120),
                Podman.Run("logs", Proxy).Output);
            Assert.Equal("true 10001", Podman.Run("inspect", "--format",
                "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}", Proxy).Stdout.Trim());
        }
        finally
        {
            Podman.Run("kube", "down", manifest);
            Podman.Run("rm", "-f", postgres, modelServer);
            Podman.Run("secret", "rm", "lopaproxy-keys");
            if (Directory.Exists(overlay)) Directory.Delete(overlay, recursive: true);
        }
    }

    private static bool Kubectl(out string why)
    {
        try
        {
            why = "";
            return Podman.Exec("kubectl", ["version", "--client"], null, 60).ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            why = "kubectl is not installed: the Deployment test renders deploy/ with `kubectl kustomize`";
            return false;
        }
    }

    private static string AddressOf(string container) =>
        Podman.Run("inspect", "--format", "{{.NetworkSettings.IPAddress}}", container).Stdout.Trim();

    /// <summary>An overlay on deploy/: the local image, one replica, and the reference backend in the ConfigMap
    /// with the store on PostgreSQL (its connection string comes from the secret, as in the base).</summary>
    private static void WriteOverlay(string overlay, string modelServerAddress)
    {
        Directory.CreateDirectory(overlay);
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(Podman.RepoRoot, "docker",
            "proxy.reference.json")))!;
        // Chat only, as the base's ConfigMap: the completions dialect reads the model's files, which this pod lacks.
        config["ReverseProxy"]!["Routes"]!.AsObject().Remove("completions");
        config["ReverseProxy"]!["Clusters"]!.AsObject().Remove("completions");
        config["LoPA"]!["Clusters"]!.AsObject().Remove("completions");
        config["ReverseProxy"]!["Clusters"]!["chat"]!["Destinations"]!["model-server"]!["Address"] =
            $"http://{modelServerAddress}:8000/";
        config["LoPA"]!["Clusters"]!["chat"]!.AsObject().Remove("ModelPath");
        config["LoPA"]!["Store"] = new System.Text.Json.Nodes.JsonObject { ["Kind"] = "postgres" };
        File.WriteAllText(Path.Combine(overlay, "proxy.json"), config.ToJsonString());
        File.WriteAllText(Path.Combine(overlay, "kustomization.yaml"), """
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources:
              - ../../../deploy
            images:
              - name: lopaproxy
                newName: localhost/lopaproxy
                newTag: latest
            replicas:
              - name: lopaproxy
                count: 1
            generatorOptions:
              disableNameSuffixHash: true
            configMapGenerator:
              - name: lopaproxy-config
                behavior: replace
                files:
                  - proxy.json
            """);
    }

    /// <summary>The Deployment's Secret as podman keeps it: a JSON object of base64 values (kubectl's data).</summary>
    private static void CreateKeysSecret(string overlay, string store)
    {
        var data = new Dictionary<string, string>
        {
            ["acme"] = AcmeKey, ["store"] = store, ["admin"] = "admin-container-key-0123456789",
        };
        string file = Path.Combine(overlay, "keys.json");
        File.WriteAllText(file, JsonSerializer.Serialize(data.ToDictionary(e => e.Key,
            e => Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(e.Value)))));
        Podman.Run("secret", "rm", "lopaproxy-keys");
        Podman.Result created = Podman.Run("secret", "create", "lopaproxy-keys", file);
        Assert.True(created.ExitCode == 0, created.Output);
    }

    /// <summary>`lopa probe` inside the container (the pod publishes no port), until it succeeds.</summary>
    private static async Task<bool> ProbeInsideAsync(string container, string url, int seconds)
    {
        DateTime end = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < end)
        {
            if (Podman.Run("exec", container, "/app/lopa", "probe", url).ExitCode == 0) return true;
            await Task.Delay(1000);
        }
        return false;
    }

    private static void SkipWithoutPodman() => Skip.If(Podman.Unavailable.Value is not null,
        Podman.Unavailable.Value);

    private static string Inspect(string image, string format) =>
        Podman.Run("image", "inspect", "--format", format, image).Stdout.Trim();

    private static void Compose(string project, Dictionary<string, string> environment, params string[] command)
    {
        var args = new List<string> { "-p", project, "-f", "docker/compose.reference.yaml" };
        args.AddRange(command);
        Podman.Result result = Podman.Exec("podman-compose", args, environment, 300);
        Assert.True(result.ExitCode == 0, $"podman-compose {string.Join(' ', command)}:\n{result.Output}");
    }

    private static string Logs(string project) =>
        Podman.Run("logs", $"{project}_proxy_1").Output + Podman.Run("logs", $"{project}_model-server_1").Output;

    private static HttpClient TenantClient(string baseUrl)
    {
        var client = new HttpClient { BaseAddress = new Uri(baseUrl) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AcmeKey);
        return client;
    }

    /// <summary>The shipped demo adapter, uploaded as tenant acme through the tenant API and activated.</summary>
    private static async Task UploadDemoAdapterAsync(HttpClient client)
    {
        using var form = new MultipartFormDataContent
        {
            { new StringContent("sst2"), "name" }, { new StringContent("1"), "version" },
            { new StringContent("true"), "activate" },
        };
        foreach (string file in new[] { "adapter_config.json", "adapter_model.safetensors" })
        {
            string path = Path.Combine(Podman.RepoRoot, "assets", "demo-adapter", file);
            form.Add(new ByteArrayContent(await File.ReadAllBytesAsync(path)), "file", file);
        }
        using HttpResponseMessage uploaded = await client.PostAsync("/v1/adapters", form);
        Assert.True((int)uploaded.StatusCode == 201, await uploaded.Content.ReadAsStringAsync());
    }

    private static JsonElement RunOpenAiClient(string baseUrl, string model)
    {
        var environment = new Dictionary<string, string>
        {
            ["OPENAI_BASE_URL"] = baseUrl + "/v1", ["OPENAI_API_KEY"] = AcmeKey, ["LOPA_MODEL"] = model,
        };
        return JsonDocument.Parse(Node.RunWithEnv("openai-client.mjs", environment)).RootElement.Clone();
    }

    private static async Task<int> PromptTokensAsync(HttpClient client, string baseUrl, string model)
    {
        using HttpResponseMessage response = await client.PostAsync(baseUrl + "/v1/chat/completions",
            System.Net.Http.Json.JsonContent.Create(new
            {
                model, max_tokens = 2, temperature = 0,
                messages = new[] { new { role = "user", content = "Tom had a red kite" } },
            }));
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32();
    }
}
