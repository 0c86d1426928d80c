namespace LoPAProxy.Benchmarks;

/// <summary>Where the repository is, for benchmarks that read its files or ../shared beside it.</summary>
public static class RepoPaths
{
    internal static string RepoDir()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "LoPAProxy.sln"))) return d.FullName;
        throw new DirectoryNotFoundException("run from inside the repository");
    }
}
