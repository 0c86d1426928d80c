using System.Diagnostics;
using System.Text.Json;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Hosting;
using Microsoft.Extensions.Configuration;

namespace LoPAProxy.Proxy.Tests;

/// <summary>
/// No Docker engine runs here, so the container and Kubernetes files are checked as files: yamllint, the
/// structure that matters (probes, non-root, resources, health check), and every embedded proxy.json through
/// the proxy's own start-up validator.
/// </summary>
public class DeploymentFilesTests
{
    private static string Repo => RepoFiles.Root;

    /// <summary>The configuration as the proxy would see it: the JSON plus the environment the deployment sets
    /// (secrets stand in as placeholders).</summary>
    private static void Validate(string json, string what, IEnumerable<string>? environment = null)
    {
        const string Placeholder = "placeholder-secret-0123456789";
        var secrets = (environment ?? []).ToDictionary(name => name.Replace("__", ":"), _ => (string?)Placeholder);
        IConfiguration config = new ConfigurationBuilder()
            .AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json)))
            .AddInMemoryCollection(secrets).Build();
        var options = new LoPAOptions();
        config.GetSection("LoPA").Bind(options);
        var result = new LoPAOptionsValidator(Proxy.Dialects.DialectServices.ShippedCatalog()).Validate(null, options);
        Assert.True(result.Succeeded, $"{what}: {result.FailureMessage}");
        Assert.True(config.GetSection("ReverseProxy:Routes").GetChildren().Any(), $"{what}: no routes");
        foreach (var cluster in options.Clusters.Keys)
        {
            Assert.True(config.GetSection($"ReverseProxy:Clusters:{cluster}:Destinations").GetChildren().Any(),
                $"{what}: LoPA cluster {cluster} has no YARP destinations");
        }
    }

    [Fact]
    public void Yaml_is_lint_clean()
    {
        var psi = new ProcessStartInfo("yamllint", "-f parsable deploy docker/compose.yaml")
        {
            WorkingDirectory = Repo,
            RedirectStandardOutput = true, RedirectStandardError = true
        };
        using var p = Process.Start(psi)
            ?? throw new InvalidOperationException("yamllint is not installed (scripts/test.sh installs it)");
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, output);
    }

    [Fact]
    public void Every_proxy_configuration_passes_the_start_up_validator()
    {
        Validate(File.ReadAllText(Path.Combine(Repo, "proxy.json")), "proxy.json");
        Validate(File.ReadAllText(Path.Combine(Repo, "docker", "proxy.compose.json")), "docker/proxy.compose.json");
        string configMap = PyTorch.Run("""
            import sys, yaml
            print(yaml.safe_load(open(sys.argv[1]))['data']['proxy.json'])
            """, Path.Combine(Repo, "deploy", "configmap.yaml"));
        string environment = PyTorch.Run("""
            import sys, yaml
            pod = yaml.safe_load(open(sys.argv[1]))['spec']['template']['spec']
            print('\n'.join(e['name'] for e in pod['containers'][0]['env']))
            """, Path.Combine(Repo, "deploy", "deployment.yaml"));
        Validate(configMap, "deploy/configmap.yaml", environment.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void The_deployment_has_probes_resources_and_runs_unprivileged()
    {
        string json = PyTorch.Run("""
            import sys, json, yaml
            print(json.dumps(yaml.safe_load(open(sys.argv[1]))))
            """, Path.Combine(Repo, "deploy", "deployment.yaml"));
        using var doc = JsonDocument.Parse(json);
        JsonElement pod = doc.RootElement.GetProperty("spec").GetProperty("template").GetProperty("spec");
        JsonElement c = pod.GetProperty("containers")[0];
        Assert.Equal("/readyz", c.GetProperty("readinessProbe").GetProperty("httpGet").GetProperty("path").GetString());
        Assert.Equal("/healthz", c.GetProperty("livenessProbe").GetProperty("httpGet").GetProperty("path").GetString());
        Assert.True(c.GetProperty("resources").TryGetProperty("limits", out _));
        Assert.True(pod.GetProperty("securityContext").GetProperty("runAsNonRoot").GetBoolean());
        Assert.Equal("lopaproxy-keys",
            c.GetProperty("env")[0].GetProperty("valueFrom").GetProperty("secretKeyRef").GetProperty("name").GetString());
        Assert.Contains("proxy", c.GetProperty("args").EnumerateArray().Select(a => a.GetString()));
        // #22 item 6: metrics on the management port, which the pod exposes and annotates for scraping.
        Assert.Contains(c.GetProperty("env").EnumerateArray(), e => e.GetProperty("name").GetString()
            == "LoPA__Management__Urls" && e.GetProperty("value").GetString() == "http://0.0.0.0:9464");
        Assert.Contains(c.GetProperty("ports").EnumerateArray(),
            p => p.GetProperty("containerPort").GetInt32() == 9464);
        Assert.Equal("9464", doc.RootElement.GetProperty("spec").GetProperty("template").GetProperty("metadata")
            .GetProperty("annotations").GetProperty("prometheus.io/port").GetString());
        Assert.True(pod.GetProperty("terminationGracePeriodSeconds").GetInt32() > 30,
            "the grace period must exceed the 30 s drain");
    }

    [Fact]
    public void The_dockerfile_is_multi_stage_non_root_without_training_or_model_runtimes_and_a_health_check()
    {
        string[] lines = File.ReadAllLines(Path.Combine(Repo, "docker", "Dockerfile"));
        Assert.True(lines.Count(l => l.StartsWith("FROM ", StringComparison.Ordinal)) >= 2, "multi-stage");
        Assert.Contains(lines, l => l.StartsWith("USER 10001", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("HEALTHCHECK ", StringComparison.Ordinal) && l.Contains("/healthz",
            StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("-p:LoPAWithoutLibTorch=true", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("-p:LoPAWithoutLlamaCpp=true", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("ENTRYPOINT ", StringComparison.Ordinal) && l.Contains("\"proxy\"",
            StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_containers_entrypoint_command_serves_health_with_the_repositorys_proxy_json()
    {
        // What the image runs, minus the image: lopa proxy --config proxy.json (relative paths resolve against the
        // file).
        string repoConfig = Path.Combine(Repo, "proxy.json"), dir = TempDir.Create(), config = Path.Combine(dir,
            "proxy.json");
        string shared = SharedFiles.Root;
        File.WriteAllText(config, File.ReadAllText(repoConfig).Replace("../shared", shared));
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { Path.Combine(AppContext.BaseDirectory, "lopa.dll"), "proxy", "--config", config,
            "--urls", "http://127.0.0.1:18931" })
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        try
        {
            using var http = new HttpClient();
            var deadline = DateTime.UtcNow.AddSeconds(30);
            HttpResponseMessage? r = null;
            while (DateTime.UtcNow < deadline)
            {
                try { r = await http.GetAsync("http://127.0.0.1:18931/healthz"); break; }
                catch (HttpRequestException) { await Task.Delay(200); }
            }
            Assert.NotNull(r);
            Assert.Equal(200, (int)r!.StatusCode);
        }
        finally { p.Kill(true); }
    }
}
