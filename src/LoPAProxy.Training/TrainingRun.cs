using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Engine.Formats.SafeTensors;
using LoPAProxy.Engine.Tensors;

namespace LoPAProxy.Training;

/// <summary>What one training run needs: the frozen model, the data, the method's options and where to write.</summary>
/// <param name="Encoder">The instance encoder (null for prompt tuning and LoRA).</param>
/// <param name="Patience">Stop after this many epochs without a better dev score (0: never).</param>
/// <param name="CheckpointEvery">Write a checkpoint every this many steps (0: at epoch ends only).</param>
public sealed record TrainingRunSettings(BaseModel Model, TrainingOptions Options, IReadOnlyList<TaskExample> Train,
    IReadOnlyList<TaskExample>? Dev, IInstanceEncoder? Encoder, string OutputDirectory, string TaskName,
    string Device = "cpu", bool Resume = false, int Patience = 0, int CheckpointEvery = 0);

/// <summary>What a training run did: losses per step, dev scores per epoch, seconds per epoch.</summary>
public sealed record TrainingRunResult(string Metric, IReadOnlyList<double> Losses,
    IReadOnlyList<(int Epoch, double Score)> Scores, IReadOnlyList<double> EpochSeconds, long TrainableParameters);

/// <summary>
/// One training run as `lopa train` (and a fine-tuning worker) performs it: train with the FM frozen, score the dev
/// set at each epoch's end, stop at a plateau, checkpoint every N steps (resumable: parameters, optimiser moments,
/// step and curves, written to a temp file and renamed), then write the adapter, training.json and
/// training_curves.svg into the output directory.
/// </summary>
public sealed class TrainingRun(TrainingRunSettings settings)
{
    public const string CheckpointFile = "checkpoint.safetensors";
    public const string MetricsFile = "training.json";
    public const string ChartFile = "training_curves.svg";

    /// <summary>Each optimiser step, as it happens.</summary>
    public event Action<TrainingProgress>? Stepped;

    /// <summary>A line worth showing (start, epoch scores, a plateau).</summary>
    public event Action<string>? Reported;

    private readonly List<double> _losses = new();
    private readonly List<(int Epoch, double Score)> _scores = new();
    private readonly List<double> _epochSeconds = new();

    public TrainingRunResult Run(CancellationToken cancel)
    {
        TrainingOptions options = settings.Options with { BaseModel = settings.Model.Name };
        if (options.Epochs <= 0 || options.BatchSize <= 0 || options.LearningRate <= 0)
            throw new ArgumentException("--epochs, --batch-size and --lr must be positive");
        string outDir = Path.GetFullPath(settings.OutputDirectory);
        Directory.CreateDirectory(outDir);
        using var trainer = new LopaTrainer(settings.Model.Weights, settings.Model.Tokenizer, settings.Encoder,
            options, device: settings.Device);
        long total = trainer.TotalSteps(settings.Train.Count);
        TrainingOptimizer optimizer = trainer.Optimizer(total);
        string optionsJson = OptionsJson(options);
        string checkpointPath = Path.Combine(outDir, CheckpointFile);
        long start = settings.Resume && File.Exists(checkpointPath)
            ? LoadCheckpoint(checkpointPath, trainer, optimizer, optionsJson) : 0;
        string metric = settings.Dev is { } dev && dev.All(e => e.Choices != null) ? "accuracy" : "exact match";
        Reported?.Invoke($"lopa train: {TrainingMethods.Name(options.Method)} · {trainer.TrainableParameters:N0} " +
            $"trainable parameters · {settings.Train.Count} examples · {total} steps · libtorch on " +
            $"{trainer.Device.type} ({TorchRuntime.Settings})" + (start > 0 ? $" · resuming at step {start}" : ""));
        Train(trainer, optimizer, start, metric, checkpointPath, optionsJson, cancel);
        if (trainer.Prompt != null)
        {
            LopaAdapter adapter = trainer.Prompt.Adapter;
            // The first training example's prompt shows callers (and the console's try-it) the trained format.
            string example = settings.Train[0].Prompt;
            if (AdapterConfig.AcceptsPromptExample(example))
                adapter = adapter.WithConfig(adapter.Config with { PromptExample = example });
            adapter.SaveDirectory(outDir);
            Reported?.Invoke($"adapter written to {outDir} ({LopaAdapter.ConfigFile}, {LopaAdapter.WeightsFile})");
        }
        WriteResults(outDir, options, optionsJson, metric, trainer.TrainableParameters);
        return new TrainingRunResult(metric, _losses, _scores, _epochSeconds, trainer.TrainableParameters);
    }

    private void Train(LopaTrainer trainer, TrainingOptimizer optimizer, long start, string metric,
        string checkpointPath, string optionsJson, CancellationToken cancel)
    {
        long total = trainer.TotalSteps(settings.Train.Count);
        long perEpoch = trainer.StepsPerEpoch(settings.Train.Count);
        var epochClock = Stopwatch.StartNew();
        using var plateau = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        void OnStep(TrainingProgress progress)
        {
            _losses.Add(progress.Loss);
            Stepped?.Invoke(progress);
            if (progress.Step % perEpoch != 0 && progress.Step != total) return;
            _epochSeconds.Add(epochClock.Elapsed.TotalSeconds);
            if (settings.Dev is { } dev) ScoreEpoch(trainer, dev, metric, progress.Step, perEpoch, plateau, cancel);
            epochClock.Restart();
        }
        try
        {
            trainer.Train(settings.Train, start, optimizer, OnStep,
                step => SaveCheckpoint(checkpointPath, trainer, optimizer, step, optionsJson),
                settings.CheckpointEvery, plateau.Token);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            trainer.Prompt?.WriteBack(); // stopped at a plateau: the adapter as trained so far
        }
    }

    private void ScoreEpoch(LopaTrainer trainer, IReadOnlyList<TaskExample> dev, string metric, long step,
        long perEpoch, CancellationTokenSource plateau, CancellationToken cancel)
    {
        double score = metric == "accuracy" ? trainer.Accuracy(dev, cancel: cancel) : trainer.ExactMatch(dev, cancel);
        _scores.Add(((int)Math.Ceiling(step / (double)perEpoch), score));
        Reported?.Invoke($"epoch {_scores[^1].Epoch}: dev {metric} {score:P2} ({dev.Count} examples), " +
            $"epoch {_epochSeconds[^1]:F1} s");
        if (settings.Patience > 0 && EpochsSinceBest() >= settings.Patience)
        {
            Reported?.Invoke($"dev {metric} has not improved for {settings.Patience} epoch(s): stopping (plateau)");
            plateau.Cancel();
        }
    }

    private string OptionsJson(TrainingOptions options) => JsonSerializer.Serialize(new
    {
        method = TrainingMethods.Name(options.Method), options.VirtualTokens, options.Rank, options.HiddenSize,
        options.Epochs, options.BatchSize, options.LearningRate, options.WarmupRatio, options.MaxGradNorm,
        options.Seed, options.MaxSteps, train = settings.Train.Count, encoder = settings.Encoder?.Name,
        layout = options.Layout.ToString().ToLowerInvariant(),
        instance = options.Instance.ToString().ToLowerInvariant(),
        lora_targets = options.Method == TrainingMethod.Lora ? string.Join(",", options.LoraTargets) : null,
    });

    private void WriteResults(string outDir, TrainingOptions options, string optionsJson, string metric,
        long trainableParameters)
    {
        string method = TrainingMethods.Name(options.Method);
        var metrics = new JsonObject
        {
            ["method"] = method, ["options"] = JsonNode.Parse(optionsJson),
            ["trainable_parameters"] = trainableParameters,
            ["steps"] = _losses.Count,
            ["loss"] = new JsonArray(_losses.Select(l => (JsonNode)JsonValue.Create(l)!).ToArray()),
            ["eval_metric"] = metric,
            ["eval"] = new JsonArray(_scores.Select(a =>
                (JsonNode)new JsonObject { ["epoch"] = a.Epoch, ["score"] = a.Score }).ToArray()),
            ["epoch_seconds"] = new JsonArray(_epochSeconds.Select(s => (JsonNode)JsonValue.Create(s)!).ToArray()),
        };
        File.WriteAllText(Path.Combine(outDir, MetricsFile),
            metrics.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        File.WriteAllText(Path.Combine(outDir, ChartFile),
            TrainingChart.Svg($"{method} on {settings.TaskName}", _losses, _scores, metric));
    }

    /// <summary>Parameters, optimiser moments, step and the curves so far; written to a temp file and renamed, so a
    /// kill never leaves half a checkpoint.</summary>
    private void SaveCheckpoint(string path, LopaTrainer trainer, TrainingOptimizer optimizer, long step,
        string optionsJson)
    {
        var (optStep, mm, vv) = optimizer.SaveState();
        float[][] parameters = trainer.ParameterValues();
        var w = new SafeTensorsWriter()
            .Metadata("step", step.ToString(CultureInfo.InvariantCulture))
            .Metadata("optimizer_step", optStep.ToString(CultureInfo.InvariantCulture))
            .Metadata("options", optionsJson)
            .Metadata("loss", JsonSerializer.Serialize(_losses))
            .Metadata("eval", JsonSerializer.Serialize(_scores.Select(a => new[] { a.Epoch, a.Score })))
            .Metadata("epoch_seconds", JsonSerializer.Serialize(_epochSeconds));
        for (int i = 0; i < parameters.Length; i++)
        {
            w.Add($"param.{i}", Tensor.FromArray(parameters[i], parameters[i].Length));
            w.Add($"adam_m.{i}", Tensor.FromArray(mm[i], mm[i].Length));
            w.Add($"adam_v.{i}", Tensor.FromArray(vv[i], vv[i].Length));
        }
        string temp = path + ".tmp";
        w.Save(temp);
        File.Move(temp, path, overwrite: true);
    }

    private long LoadCheckpoint(string path, LopaTrainer trainer, TrainingOptimizer optimizer, string optionsJson)
    {
        using var file = SafeTensorsFile.Open(path);
        if (file.Metadata.GetValueOrDefault("options") != optionsJson)
        {
            throw new InvalidOperationException($"the checkpoint in {Path.GetDirectoryName(path)} was made with " +
                $"other options ({file.Metadata.GetValueOrDefault("options")}); " +
                "train into a new --out or drop --resume");
        }

        int n = trainer.Parameters.Count;
        var parameters = new float[n][];
        var mm = new float[n][];
        var vv = new float[n][];
        for (int i = 0; i < n; i++)
        {
            parameters[i] = file.ReadFloat32($"param.{i}").ToArray();
            mm[i] = file.ReadFloat32($"adam_m.{i}").ToArray();
            vv[i] = file.ReadFloat32($"adam_v.{i}").ToArray();
        }
        trainer.LoadParameterValues(parameters);
        long step = long.Parse(file.Metadata["step"], CultureInfo.InvariantCulture);
        optimizer.LoadState(long.Parse(file.Metadata["optimizer_step"], CultureInfo.InvariantCulture), mm, vv);
        _losses.AddRange(JsonSerializer.Deserialize<List<double>>(file.Metadata["loss"])!);
        _scores.AddRange(JsonSerializer.Deserialize<List<double[]>>(file.Metadata["eval"])!
            .Select(a => ((int)a[0], a[1])));
        _epochSeconds.AddRange(JsonSerializer.Deserialize<List<double>>(file.Metadata["epoch_seconds"])!);
        return step;
    }

    /// <summary>Epochs since the best dev score (the first epoch that reached it).</summary>
    private int EpochsSinceBest()
    {
        double best = _scores.Max(s => s.Score);
        return _scores.Count - 1 - _scores.FindIndex(s => s.Score == best);
    }
}
