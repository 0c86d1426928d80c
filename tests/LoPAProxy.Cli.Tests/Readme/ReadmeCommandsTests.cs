using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Cli.Tests.Readme;

/// <summary>
/// Every command in the bash blocks of the README and the tenant guide, run as written and in order, as one shell
/// session per document in a scratch copy (its own HOME, ../shared beside it, the repository's proxy.json, the Node
/// peers' node_modules) with ./lopa the lopa built beside the tests (lopa-shim.sh: server commands are started,
/// waited for and stopped with SIGTERM). The lines left out are listed with their reasons.
/// </summary>
public partial class ReadmeCommandsTests
{
    /// <summary>README lines not run here, and why.</summary>
    private static readonly Dictionary<string, string> LeftOut = new()
    {
        ["./scripts/test.sh"] = "it is the command that runs this test",
        ["scripts/glue-table.sh"] =
            "it trains 45 adapters for hours; its figures are in the README with their command",
    };

    [Fact]
    public void Every_readme_command_runs_as_written()
    {
        string log = RunSession("README.md");
        Assert.Contains("\"object\":\"chat.completion\"", log);
        Assert.Contains("imported   acme/story@1", log);
        Assert.Matches(@"(?m)^sentiment\s+1\s+", log);
        Assert.Matches(@"(?m)^limits\.requests_per_minute\s+600$", log);
        Assert.Matches(@"(?m)^demo\s+\S+\s+\d+", log); // the demo tenant's usage row
    }

    [Fact]
    public void The_tenant_guide_runs_end_to_end()
    {
        string log = RunSession("docs/tenant-guide.md");
        Assert.Matches(@"(?m)^reviews\s+1\s+", log);
        Assert.Contains("stories260K:reviews (demo)", log);
        Assert.Matches("completion: \".*\" model: stories260K:reviews prompt tokens: \\d+", log);
        Assert.Contains("chat (streamed): ", log);
    }

    /// <summary>Runs the document's session and returns everything it printed; fails with the tail of it.</summary>
    private static string RunSession(string document)
    {
        string script = SessionScript(File.ReadAllText(RepoFiles.Path_(document.Split('/'))));
        string work = Scratch();
        File.WriteAllText(Path.Combine(work, "readme-session.sh"), script);
        var psi = new ProcessStartInfo("bash", "readme-session.sh")
        {
            WorkingDirectory = work, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        psi.Environment["HOME"] = Path.Combine(work, "..", "home");
        psi.Environment["LOPA_DLL"] = Path.Combine(AppContext.BaseDirectory, "lopa.dll");
        foreach (string name in new[] { "OPENAI_API_KEY", "OPENAI_BASE_URL", "LOPA_URL", "LOPA_ADMIN_KEY",
            "LOPA_CACHE_DIR" })
        {
            psi.Environment.Remove(name);
        }

        using var p = Process.Start(psi)!;
        var output = new StringBuilder();
        p.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        bool exited = p.WaitForExit(TimeSpan.FromMinutes(20));
        if (!exited) p.Kill(true);
        p.WaitForExit();
        string log;
        lock (output) log = output.ToString();
        string tail = log.Length > 6000 ? log[^6000..] : log;
        int exit = exited ? p.ExitCode : -1;
        Assert.True(exit == 0, $"{document} session failed (exit {exit}):\n{tail}");
        return log;
    }

    /// <summary>The bash blocks, minus the lines left out, as one script that stops at the first failure and
    /// traces each command.</summary>
    internal static string SessionScript(string readme)
    {
        var lines = new List<string> { "set -euo pipefail", "set -x" };
        foreach (Match block in BashBlock().Matches(readme))
        {
            foreach (string line in block.Groups[1].Value.Split('\n'))
            {
                string command = line.Trim();
                if (command.Length == 0) continue;
                if (LeftOut.Keys.Any(k => command.StartsWith(k, StringComparison.Ordinal))) continue;
                lines.Add(line);
            }
        }

        return string.Join("\n", lines) + "\n";
    }

    /// <summary>{tmp}/main (the session's folder, with ./lopa, proxy.json and the converter's inputs) beside
    /// {tmp}/shared (the shared models and data).</summary>
    private static string Scratch()
    {
        string root = TempDir.Create(), work = Path.Combine(root, "main");
        Directory.CreateDirectory(work);
        Directory.CreateDirectory(Path.Combine(root, "home"));
        Directory.CreateSymbolicLink(Path.Combine(root, "shared"), SharedFiles.Root);
        File.Copy(RepoFiles.Path_("proxy.json"), Path.Combine(work, "proxy.json"));
        Directory.CreateSymbolicLink(Path.Combine(work, "node_modules"), Path.Combine(Node.Directory, "node_modules"));
        string shim = Path.Combine(work, "lopa");
        File.Copy(Path.Combine(AppContext.BaseDirectory, "Readme", "lopa-shim.sh"), shim);
        File.SetUnixFileMode(shim, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        WriteReferenceCheckpoints(work);
        return work;
    }

    /// <summary>adapter_model.bin (PEFT's Z_S) and lopa_enc.pt (the generator's state dict, encoder under enc.) as
    /// the paper's code saves them: MiniLM width 384, stories260K width 64, m = 10, r = 4.</summary>
    private static void WriteReferenceCheckpoints(string folder) => PyTorch.Run("""
        import sys, os, torch
        torch.manual_seed(0)
        d = sys.argv[1]
        m, dim, h, H, r = 10, 64, 384, 32, 4
        state = {
            'enc.row_dense.weight': torch.randn(H, h) * 0.02, 'enc.row_dense.bias': torch.zeros(H),
            'enc.row_out_proj.weight': torch.randn(m * r, H) * 0.02, 'enc.row_out_proj.bias': torch.zeros(m * r),
            'enc.col_dense.weight': torch.randn(H, h) * 0.02, 'enc.col_dense.bias': torch.zeros(H),
            'enc.col_out_proj.weight': torch.randn(dim * r, H) * 0.02, 'enc.col_out_proj.bias': torch.zeros(dim * r),
        }
        torch.save(state, os.path.join(d, 'lopa_enc.pt'))
        torch.save({'prompt_embeddings': torch.randn(m, dim)}, os.path.join(d, 'adapter_model.bin'))
        """, folder);

    [GeneratedRegex(@"```bash\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex BashBlock();
}
