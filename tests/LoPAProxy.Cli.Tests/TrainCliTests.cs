using System.Globalization;
using System.Text.Json;
using System.Xml.Linq;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Cli.Tests;

/// <summary>`lopa train` and `lopa eval` as real processes on stories260K, MiniLM and real SST-2 rows.</summary>
public class TrainCliTests
{
    private static string Stories => SharedFiles.Path_("models", "stories260K", "stories260K.bin");
    private static string Sst2(string split) => SharedFiles.Path_("data", "glue", "SST-2", split + ".tsv");

    private static string[] TrainArgs(string outDir, params string[] extra) => new[]
    {
        "train", "--base", Stories, "--encoder", "minilm", "--data", Sst2("train"), "--limit", "48",
        "--eval", Sst2("dev"), "--eval-limit", "24", "--method", "lopa", "--m", "4", "--r", "2", "--hidden", "32", "--epochs", "2",
        "--batch-size", "4", "--out", outDir,
    }.Concat(extra).ToArray();

    [Fact]
    public void Trains_an_adapter_the_proxy_loads_with_curves_and_eval()
    {
        string dir = TempDir.Create();
        using (var train = new LopaProcess(TrainArgs(dir)))
        {
            Assert.True(train.WaitForExit(180) == 0, train.Stderr);
            Assert.Contains("step 24/24", train.Stderr);
            Assert.Contains("epoch 2: dev accuracy", train.Stderr);
        }
        LopaAdapter adapter = LopaAdapter.Load(dir);
        Assert.Equal(Composition.Lopa, adapter.Config.Composition);
        Assert.Equal("minilm", adapter.Config.Encoder);
        Assert.Equal(64, adapter.Config.TokenDim);

        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "training.json")));
        Assert.Equal(24, metrics.RootElement.GetProperty("loss").GetArrayLength());
        Assert.Equal(2, metrics.RootElement.GetProperty("eval").GetArrayLength());
        Assert.Equal(adapter.Config.TrainableParameters,
            metrics.RootElement.GetProperty("trainable_parameters").GetInt64());
        XDocument svg = XDocument.Load(Path.Combine(dir, "training_curves.svg"));
        Assert.Equal(2, svg.Descendants().Count(e =>
            e.Name.LocalName == "circle"));                 // one accuracy point per epoch
        Assert.Equal(3, svg.Descendants().Count(e =>
            e.Name.LocalName == "polyline"));               // raw loss, smoothed loss, accuracy

        double trained = metrics.RootElement.GetProperty("eval")[1].GetProperty("score").GetDouble();
        using var eval = new LopaProcess("eval", "--base", Stories, "--adapter", dir, "--data", Sst2("dev"), "--limit",
            "24");
        Assert.True(eval.WaitForExit(120) == 0, eval.Stderr);
        Assert.Contains($"accuracy {trained:P2}".Replace(",", "."), eval.Stdout.Replace(",", "."));
    }

    [Fact]
    public void Patience_stops_at_a_dev_plateau_and_still_writes_the_adapter()
    {
        // A learning rate too small to move the dev score: epoch 1 sets the best, epoch 2 does not beat it, stop.
        string dir = TempDir.Create();
        string[] args = TrainArgs(dir, "--patience", "1", "--lr", "1e-12");
        args[Array.IndexOf(args, "--epochs") + 1] = "4";
        using (var train = new LopaProcess(args))
        {
            Assert.True(train.WaitForExit(180) == 0, train.Stderr);
            Assert.Contains("has not improved for 1 epoch(s): stopping (plateau)", train.Stderr);
        }
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "training.json")));
        Assert.Equal(2, metrics.RootElement.GetProperty("eval").GetArrayLength());
        Assert.Equal(Composition.Lopa, LopaAdapter.Load(dir).Config.Composition);
    }

    [Fact]
    public void Killed_and_resumed_training_ends_with_the_same_adapter_bytes()
    {
        string straight = TempDir.Create(), interrupted = TempDir.Create();
        using (var train = new LopaProcess(TrainArgs(straight)))
            Assert.True(train.WaitForExit(180) == 0, train.Stderr);

        using (var train = new LopaProcess(TrainArgs(interrupted, "--checkpoint-every", "1")))
        {
            string checkpoint = Path.Combine(interrupted, "checkpoint.safetensors");
            var deadline = DateTime.UtcNow.AddSeconds(120);
            while (!File.Exists(checkpoint) && !train.HasExited && DateTime.UtcNow < deadline) Thread.Sleep(20);
            Thread.Sleep(100);
            train.Kill9();
        }
        using (var resume = new LopaProcess(TrainArgs(interrupted, "--checkpoint-every", "1", "--resume")))
        {
            Assert.True(resume.WaitForExit(180) == 0, resume.Stderr);
            var at = System.Text.RegularExpressions.Regex.Match(resume.Stderr, @"resuming at step (\d+)");
            Assert.True(at.Success, resume.Stderr);
            int resumedAt = int.Parse(at.Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.InRange(resumedAt, 1, 23); // killed mid-run, not after it
        }
        Assert.Equal(File.ReadAllBytes(Path.Combine(straight, LopaAdapter.WeightsFile)),
            File.ReadAllBytes(Path.Combine(interrupted, LopaAdapter.WeightsFile)));

        // Other options against the same checkpoint are refused, not silently mixed.
        using var other = new LopaProcess(TrainArgs(interrupted, "--resume", "--lr", "0.01"));
        Assert.Equal(1, other.WaitForExit(120));
        Assert.Contains("other options", other.Stderr);
    }

    [Fact]
    public void Bad_arguments_are_one_line_errors()
    {
        string dir = TempDir.Create();
        using var method = new LopaProcess("train", "--base", Stories, "--data", Sst2("train"), "--method", "magic",
            "--out", dir);
        Assert.Equal(1, method.WaitForExit(60));
        Assert.Contains("unknown method 'magic'", method.Stderr);
        using var data = new LopaProcess("train", "--base", Stories, "--data", Path.Combine(dir, "nothing.tsv"),
            "--out", dir);
        Assert.Equal(1, data.WaitForExit(60));
        Assert.StartsWith("lopa:", data.Stderr);
    }
}
