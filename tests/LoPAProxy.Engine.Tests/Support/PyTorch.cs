using System.Diagnostics;

namespace LoPAProxy.Engine.Tests.Support;

/// <summary>
/// Runs a Python script under Debian's python3 with python3-torch (the real PyTorch the interop tests
/// check against). LOPA_PYTHON overrides the interpreter. Missing torch is a failure, not a skip:
/// the README's test command installs it.
/// </summary>
public static class PyTorch
{
    public static string Interpreter => Environment.GetEnvironmentVariable("LOPA_PYTHON") is { Length: > 0 } p
        ? p : "/usr/bin/python3";

    /// <summary>Runs <paramref name="script"/> with <paramref name="args"/>; returns stdout, throws with stderr on
    /// failure.</summary>
    public static string Run(string script, params string[] args)
    {
        string dir = TempDir.Create();
        string path = Path.Combine(dir, "script.py");
        File.WriteAllText(path, script);
        var psi = new ProcessStartInfo(Interpreter)
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
            UseShellExecute = false
        };
        psi.ArgumentList.Add(path);
        foreach (string a in args) psi.ArgumentList.Add(a);
        psi.Environment["OMP_NUM_THREADS"] = "1";
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {Interpreter}");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(), stderr = process.StandardError.ReadToEndAsync();
        // A guard against a hung interpreter, not a speed check: PyTorch on two shared cores, beside the other test
        // assemblies running in parallel, has needed over 120 s for the MiniLM reference.
        if (!process.WaitForExit(300_000))
        {
            process.Kill(true);
            throw new TimeoutException("python script ran over 300 s");
        }
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{Interpreter} exited {process.ExitCode} (is python3-torch installed? run scripts/test.sh):\n{stderr.Result}");
        return stdout.Result;
    }
}

public static class TempDir
{
    public static string Create()
    {
        string dir = Path.Combine(Path.GetTempPath(), "lopa-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}

/// <summary>The repository checkout the tests run from (the first ancestor of the test binaries with
/// LoPAProxy.sln).</summary>
public static class RepoFiles
{
    public static string Root
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "LoPAProxy.sln"))) return d.FullName;
            throw new DirectoryNotFoundException("LoPAProxy.sln not found above the test binaries");
        }
    }

    public static string Path_(params string[] parts) => Path.Combine(new[] { Root }.Concat(parts).ToArray());
}

/// <summary>Finds ../shared (models, data): LOPA_SHARED, else the first ancestor of the test binaries with a sibling
/// 'shared'.</summary>
public static class SharedFiles
{
    public static string Root
    {
        get
        {
            if (Environment.GetEnvironmentVariable("LOPA_SHARED") is { Length: > 0 } env) return env;
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, "shared");
                if (Directory.Exists(Path.Combine(candidate, "models"))) return candidate;
            }
            throw new DirectoryNotFoundException("../shared not found beside the checkout; set LOPA_SHARED");
        }
    }

    public static string Path_(params string[] parts) => Path.Combine(new[] { Root }.Concat(parts).ToArray());
}

public static class Rand
{
    public static float[] Floats(Random rng, int n, float scale = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float tol,
        string what = "")
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            float e = expected[i], a = actual[i];
            if (float.IsNaN(e) && float.IsNaN(a)) continue;
            float err = MathF.Abs(e - a), bound = tol * MathF.Max(1f, MathF.Abs(e));
            if (!(err <= bound)) Assert.Fail($"{what} element {i}: expected {e}, got {a} (|err| {err} > {bound})");
        }
    }
}

/// <summary>
/// Runs a script from tests/node with Node.js, where scripts/test.sh installed the pinned peer packages
/// (tokenizers, TF.js, the openai client). Missing node_modules is a failure, not a skip.
/// </summary>
public static class Node
{
    public static string Directory
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, "tests", "node");
                if (File.Exists(Path.Combine(candidate, "package.json"))) return candidate;
            }
            throw new DirectoryNotFoundException("tests/node not found above the test binaries");
        }
    }

    public static string Run(string script, params string[] args) => RunWithEnv(script, new(), args);

    /// <summary>Runs a script of tests/node with extra environment variables; returns stdout.</summary>
    public static string RunWithEnv(string script, Dictionary<string, string> environment, params string[] args)
    {
        string dir = Directory;
        if (!System.IO.Directory.Exists(Path.Combine(dir,
            "node_modules")))
        {
            throw new InvalidOperationException(
                $"{dir}/node_modules is missing: run scripts/test.sh (it runs npm ci there)");
        }

        var psi = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
            UseShellExecute = false, WorkingDirectory = dir
        };
        psi.ArgumentList.Add(Path.Combine(dir, script));
        foreach (string a in args) psi.ArgumentList.Add(a);
        foreach (var (name, value) in environment) psi.Environment[name] = value;
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start node");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(), stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(180_000)) { process.Kill(true); throw new TimeoutException($"node {script} ran over 180 s"); }
        if (process.ExitCode != 0) throw new InvalidOperationException($"node {script} exited {process.ExitCode}:\n{stderr.Result}");
        return stdout.Result;
    }
}
