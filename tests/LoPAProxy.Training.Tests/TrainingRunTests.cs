using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Training.Tests;

/// <summary>The training run in process (what `lopa train` and a fine-tuning worker call): events, files, resume.
/// </summary>
public class TrainingRunTests
{
    private static string Stories => SharedFiles.Path_("models", "stories260K", "stories260K.bin");
    private static string Sst2(string split) => SharedFiles.Path_("data", "glue", "SST-2", split + ".tsv");

    private static TrainingRunSettings Settings(string dir, int epochs, bool resume = false) => new(
        BaseModel.Load(Stories),
        new TrainingOptions
        {
            Method = TrainingMethod.Lopa, VirtualTokens = 4, Rank = 2, HiddenSize = 16, Epochs = epochs,
            BatchSize = 4, LearningRate = 1e-3,
        },
        TaskData.Load(Sst2("train"), 16), TaskData.Load(Sst2("dev"), 8),
        EncoderFactory.Create("fm-mean", new EncoderOptions { FoundationModel = Stories }), dir, "SST-2",
        Resume: resume, CheckpointEvery: 2);

    [Fact]
    public void A_run_reports_each_step_scores_each_epoch_and_writes_adapter_metrics_and_chart()
    {
        string dir = TempDir.Create();
        var run = new TrainingRun(Settings(dir, epochs: 2));
        var steps = new List<long>();
        var lines = new List<string>();
        run.Stepped += p => steps.Add(p.Step);
        run.Reported += lines.Add;
        TrainingRunResult result = run.Run(CancellationToken.None);

        Assert.Equal(Enumerable.Range(1, 8).Select(i => (long)i), steps);
        Assert.Equal("accuracy", result.Metric);
        Assert.Equal([1, 2], result.Scores.Select(s => s.Epoch));
        Assert.All(result.Scores, s => Assert.InRange(s.Score, 0, 1));
        Assert.Equal(8, result.Losses.Count);
        Assert.Contains(lines, l => l.StartsWith("epoch 2: dev accuracy", StringComparison.Ordinal));
        LopaAdapter adapter = LopaAdapter.Load(dir);
        Assert.Equal(result.TrainableParameters, adapter.Config.TrainableParameters);
        // The trained format, shown to callers: SST-2's first training review followed by " Sentiment:".
        Assert.Equal(TaskData.Load(Sst2("train"), 1)[0].Prompt, adapter.Config.PromptExample);
        Assert.EndsWith(" Sentiment:", adapter.Config.PromptExample, StringComparison.Ordinal);
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, TrainingRun.MetricsFile)));
        Assert.Equal(8, metrics.RootElement.GetProperty("steps").GetInt32());
        Assert.StartsWith("<svg", File.ReadAllText(Path.Combine(dir, TrainingRun.ChartFile)));
    }

    [Fact]
    public void A_resumed_run_continues_from_its_checkpoint_and_refuses_other_options()
    {
        string dir = TempDir.Create();
        new TrainingRun(Settings(dir, epochs: 1)).Run(CancellationToken.None);
        Assert.True(File.Exists(Path.Combine(dir, TrainingRun.CheckpointFile)));

        var resumed = new TrainingRun(Settings(dir, epochs: 1, resume: true));
        var steps = new List<long>();
        resumed.Stepped += p => steps.Add(p.Step);
        TrainingRunResult result = resumed.Run(CancellationToken.None);
        Assert.Empty(steps); // the checkpoint was taken at the last step: nothing is left to train
        Assert.Equal(4, result.Losses.Count); // the curves came back with it

        var other = new TrainingRun(Settings(dir, epochs: 2, resume: true));
        var e = Assert.Throws<InvalidOperationException>(() => other.Run(CancellationToken.None));
        Assert.Contains("other options", e.Message);
    }
}
