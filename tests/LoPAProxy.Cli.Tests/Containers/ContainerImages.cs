namespace LoPAProxy.Cli.Tests.Containers;

/// <summary>
/// The images, built once per test run by docker/build.sh --podman exactly as an operator on this kind of machine
/// builds them (the local base is made only when missing, so later runs reuse it; the layers come from the cache).
/// </summary>
public sealed class ContainerImages
{
    public const string LocalBase = "localhost/lopa-base:bookworm";
    public const string Proxy = "localhost/lopaproxy:latest";
    public const string ModelServer = "localhost/lopa-model-server:latest";

    private readonly Lazy<string> _buildLog = new(Build);

    /// <summary>Builds the images (once); the build's output, for failure messages.</summary>
    public string EnsureBuilt() => _buildLog.Value;

    private static string Build()
    {
        Podman.Result build = Podman.Exec("bash", ["docker/build.sh", "--podman"], null, 900);
        Assert.True(build.ExitCode == 0, $"docker/build.sh failed:\n{build.Output}");
        return build.Output;
    }
}
