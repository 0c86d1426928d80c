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
        Assert.Contains("lopa — LoPA soft-prompt proxy", Podman.Run("run", "--rm", ContainerImages.Proxy, "--help").Stdout);
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
            Podman.Result started = Podman.Run("run", "-d", "--name", name, "--read-only", "-v", $"{name}:/var/lib/lopa",
                "-p", $"127.0.0.1:{port}:8080", ContainerImages.Proxy);
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
    public async Task The_reference_stack_answers_the_openai_client_with_a_soft_prompt_and_keeps_state_across_a_new_proxy()
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
