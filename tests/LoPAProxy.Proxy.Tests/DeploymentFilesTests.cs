using System.Diagnostics;
using System.Text.Json;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.Hosting;
using Microsoft.Extensions.Configuration;

namespace LoPAProxy.Proxy.Tests;

/// <summary>
/// The container and Kubernetes files as files: yamllint, the structure that matters (probes, non-root, resources,
/// health check), and every embedded proxy.json through the proxy's own start-up validator. The images themselves are
/// built and run by the Cli tests' ContainerTests (podman).
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
        const string Files = "deploy docker/compose.yaml docker/compose.reference.yaml";
        var psi = new ProcessStartInfo("yamllint", "-f parsable " + Files)
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
        Validate(File.ReadAllText(Path.Combine(Repo, "docker", "proxy.reference.json")),
            "docker/proxy.reference.json");
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

    /// <summary>#23: the command is CMD, so `IMAGE adapter import …` and a Deployment's args replace it; the program
    /// is the ENTRYPOINT. The proxy flavour leaves libtorch, llama.cpp and the CUDA provider out.</summary>
    [Fact]
    public void The_dockerfile_runs_lopa_with_the_command_in_cmd_non_root_with_a_health_check()
    {
        string[] lines = File.ReadAllLines(Path.Combine(Repo, "docker", "Dockerfile"));
        Assert.Contains("ENTRYPOINT [\"/app/lopa\"]", lines);
        Assert.Contains("CMD [\"proxy\", \"--config\", \"/etc/lopa/proxy.json\", \"--urls\", \"http://0.0.0.0:8080\"]",
            lines);
        Assert.Contains(lines, l => l.StartsWith("USER 10001", StringComparison.Ordinal));
        const string Probe = "\"probe\", \"http://127.0.0.1:8080/healthz\"";
        Assert.Contains(lines, l => l.Contains(Probe, StringComparison.Ordinal));
        string publish = File.ReadAllText(Path.Combine(Repo, "docker", "publish.sh"));
        Assert.Contains("proxy) flags=(-p:LoPAWithoutLibTorch=true -p:LoPAWithoutLlamaCpp=true " +
            "-p:LoPAKeepCudaProvider=false)", publish, StringComparison.Ordinal);
    }
}
