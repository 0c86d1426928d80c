using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Engine.Formats.SafeTensors;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.Training;

namespace LoPAProxy.Cli;

/// <summary>
/// `lopa train` (an adapter the proxy loads as is, or a LoRA score) with a live progress bar, checkpoints every N steps
/// and --resume; `lopa eval` (an adapter's accuracy or exact match on a data file).
/// </summary>
internal static class TrainCommands
{
    private const string CheckpointFile = "checkpoint.safetensors", MetricsFile = "training.json", ChartFile = "training_curves.svg";

    public static Command Train()
    {
        var baseModel = new Option<string>("--base")
        {
            Description = "the frozen foundation model (llama2.c .bin or HF directory)",
            Required = true,
        };
        var encoderName = new Option<string>("--encoder") { Description = "instance encoder: minilm | arctic-xs | fm-mean | your own with --encoder-dir (unused by prompt_tuning and lora)", DefaultValueFactory = _ => "minilm" };
        var encoderDir = new Option<string?>("--encoder-dir")
        {
            Description = "an ONNX encoder directory for an encoder of your own (minilm and arctic-xs need none)",
        };
        var data = new Option<string>("--data")
        {
            Description = "training data: GLUE SST-2/RTE/MRPC train.tsv, or .jsonl with prompt/completion",
            Required = true,
        };
        var evalData = new Option<string?>("--eval")
        {
            Description = "evaluation data, scored after every epoch (accuracy; exact match for .jsonl)",
        };
        var method = new Option<string>("--method")
        {
            Description = "prompt_tuning | idpg | lopa_add | lopa | lora",
            DefaultValueFactory = _ => "lopa",
        };
        var m = new Option<int>("--m") { Description = "soft-prompt rows", DefaultValueFactory = _ => 10 };
        var r = new Option<int>("--r") { Description = "rank of u·vᵀ (and LoRA's rank)", DefaultValueFactory = _ => 4 };
        var hidden = new Option<int>("--hidden")
        {
            Description = "H, the generator heads' hidden size",
            DefaultValueFactory = _ => 256,
        };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 1 };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 8 };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => 1e-3 };
        var warmup = new Option<double>("--warmup")
        {
            Description = "warmup fraction of all steps (0 = constant schedule)",
            DefaultValueFactory = _ => 0.06,
        };
        var clip = new Option<double>("--max-grad-norm") { DefaultValueFactory = _ => 1.0 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 0 };
        var limit = new Option<int>("--limit")
        {
            Description = "use the first N training examples",
            DefaultValueFactory = _ => int.MaxValue,
        };
        var evalLimit = new Option<int>("--eval-limit") { DefaultValueFactory = _ => int.MaxValue };
        var patience = new Option<int>("--patience")
        {
            Description = "stop when the dev score has not improved for N epochs (0 = run every epoch; needs --eval)",
            DefaultValueFactory = _ => 0,
        };
        var maxSteps = new Option<long>("--max-steps")
        {
            Description = "stop after N optimiser steps (0 = all epochs)",
            DefaultValueFactory = _ => 0,
        };
        var checkpointEvery = new Option<int>("--checkpoint-every")
        {
            Description = "save a resumable checkpoint every N steps",
            DefaultValueFactory = _ => 200,
        };
        var loraTargets = new Option<string>("--lora-targets")
        {
            Description = "lora: attention projections to update, comma-separated from q,k,v,o",
            DefaultValueFactory = _ => "q,v",
        };
        var resume = new Option<bool>("--resume") { Description = "continue from --out's checkpoint" };
        var device = DeviceOption();
        var layout = LayoutOption();
        var instance = InstanceOption();
        var threads = new Option<int>("--threads")
        {
            Description = "libtorch intra-op threads (0 = 1 for models narrower than 256, else one per core); "
                + "OpenMP waits passively unless OMP_WAIT_POLICY is set",
            DefaultValueFactory = _ => 0,
        };
        var output = new Option<string>("--out")
        {
            Description = "output directory: the adapter, training.json, training_curves.svg, checkpoint",
            Required = true,
        };
        var command = new Command("train", "Train an adapter with the foundation model frozen")
            { baseModel, encoderName, encoderDir, data, evalData, method, m, r, hidden, epochs, batch, lr, warmup,
                clip, seed, limit, evalLimit, patience, maxSteps, checkpointEvery, loraTargets, resume, device, layout, instance,
                threads, output };
        command.SetAction((p, cancel) =>
        {
            var options = new TrainingOptions
            {
                Method = TrainingMethods.Parse(p.GetValue(method)!), VirtualTokens = p.GetValue(m), Rank = p.GetValue(r), HiddenSize = p.GetValue(hidden),
                Epochs = p.GetValue(epochs), BatchSize = p.GetValue(batch), LearningRate = p.GetValue(lr), WarmupRatio = p.GetValue(warmup),
                MaxGradNorm = p.GetValue(clip), Seed = p.GetValue(seed), MaxSteps = p.GetValue(maxSteps),
                Threads = p.GetValue(threads), Layout = p.GetValue(layout),
                Instance = p.GetValue(instance),
                LoraTargets = p.GetValue(loraTargets)!.Split(',',
                    StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            };
            BaseModel fm = BaseModel.Load(p.GetValue(baseModel)!);
            options = options with { BaseModel = fm.Name };
            if (options.Epochs <= 0 || options.BatchSize <= 0
                || options.LearningRate <= 0) throw new ArgumentException("--epochs, --batch-size and --lr must be positive");
            string outDir = Path.GetFullPath(p.GetValue(output)!);
            Directory.CreateDirectory(outDir);
            List<TaskExample> train = TaskData.Load(p.GetValue(data)!, p.GetValue(limit));
            List<TaskExample>? dev = p.GetValue(evalData) is { } ev ? TaskData.Load(ev, p.GetValue(evalLimit)) : null;
            IInstanceEncoder? encoder = options.Method is TrainingMethod.PromptTuning or TrainingMethod.Lora ? null
                : EncoderFactory.Create(p.GetValue(encoderName)!, EncodeCommands.Options(p.GetValue(encoderDir),
                    p.GetValue(baseModel), p.GetValue(encoderName)!));
            using var trainer = new LopaTrainer(fm.Weights, fm.Tokenizer, encoder, options,
                device: p.GetValue(device)!);
            long total = trainer.TotalSteps(train.Count), perEpoch = trainer.StepsPerEpoch(train.Count);
            TrainingOptimizer optimizer = trainer.Optimizer(total);
            string optionsJson = JsonSerializer.Serialize(new { method = TrainingMethods.Name(options.Method),
                options.VirtualTokens, options.Rank, options.HiddenSize, options.Epochs,
                options.BatchSize, options.LearningRate, options.WarmupRatio, options.MaxGradNorm, options.Seed, options.MaxSteps, train = train.Count, encoder = encoder?.Name,
                layout = options.Layout.ToString().ToLowerInvariant(),
                instance = options.Instance.ToString().ToLowerInvariant(),
                lora_targets = options.Method == TrainingMethod.Lora ? string.Join(",", options.LoraTargets) : null });
            var losses = new List<double>();
            var accuracy = new List<(int Epoch, double Accuracy)>();
            var epochSeconds = new List<double>();
            long start = 0;
            string checkpointPath = Path.Combine(outDir, CheckpointFile);
            if (p.GetValue(resume) && File.Exists(checkpointPath))
                start = LoadCheckpoint(checkpointPath, trainer, optimizer, optionsJson, losses, accuracy, epochSeconds);
            string metric = dev != null && dev.All(e => e.Choices != null) ? "accuracy" : "exact match";
            double Evaluate(List<TaskExample> set) => metric == "accuracy" ? trainer.Accuracy(set,
                cancel: cancel) : trainer.ExactMatch(set, cancel);
            Console.Error.WriteLine($"lopa train: {TrainingMethods.Name(options.Method)} · {trainer.TrainableParameters:N0} trainable parameters · {train.Count} examples · {total} steps"
                + $" · libtorch on {trainer.Device.type} ({TorchRuntime.Settings})"
                + (start > 0 ? $" · resuming at step {start}" : ""));
            var bar = new ProgressBar();
            var epochClock = Stopwatch.StartNew();
            using var plateau = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            try
            {
                trainer.Train(train, start, optimizer, progress =>
                {
                    losses.Add(progress.Loss);
                    bar.Report(progress);
                    if (progress.Step % perEpoch == 0 || progress.Step == total)
                    {
                        epochSeconds.Add(epochClock.Elapsed.TotalSeconds);
                        if (dev != null)
                        {
                            double score = Evaluate(dev);
                            accuracy.Add(((int)Math.Ceiling(progress.Step / (double)perEpoch), score));
                            string seconds = $"epoch {epochSeconds[^1]:F1} s";
                            string epoch = $"epoch {accuracy[^1].Epoch}";
                            bar.Line($"{epoch}: dev {metric} {score:P2} ({dev.Count} examples), {seconds}");
                            if (p.GetValue(patience) is > 0 and int wait && EpochsSinceBest(accuracy) >= wait)
                            {
                                bar.Line($"dev {metric} has not improved for {wait} epoch(s): stopping (plateau)");
                                plateau.Cancel();
                            }
                        }
                        epochClock.Restart();
                    }
                }, step =>
                    SaveCheckpoint(checkpointPath, trainer, optimizer, step, optionsJson, losses, accuracy,
                    epochSeconds), p.GetValue(checkpointEvery), plateau.Token);
            }
            catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
            {
                trainer.Prompt?.WriteBack(); // stopped at a plateau: the adapter as trained so far
            }
            bar.Done();

            if (trainer.Prompt != null)
            {
                trainer.Prompt.Adapter.SaveDirectory(outDir);
                Console.Error.WriteLine($"adapter written to {outDir} ({LopaAdapter.ConfigFile}, {LopaAdapter.WeightsFile})");
            }
            var metrics = new JsonObject
            {
                ["method"] = TrainingMethods.Name(options.Method), ["options"] = JsonNode.Parse(optionsJson),
                    ["trainable_parameters"] = trainer.TrainableParameters,
                ["steps"] = losses.Count, ["loss"] = new JsonArray(losses.Select(l =>
                    (JsonNode)JsonValue.Create(l)!).ToArray()),
                ["eval_metric"] = metric, ["eval"] = new JsonArray(accuracy.Select(a =>
                    (JsonNode)new JsonObject { ["epoch"] = a.Epoch, ["score"] = a.Accuracy }).ToArray()),
                ["epoch_seconds"] = new JsonArray(epochSeconds.Select(s => (JsonNode)JsonValue.Create(s)!).ToArray()),
            };
            File.WriteAllText(Path.Combine(outDir, MetricsFile),
                metrics.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            File.WriteAllText(Path.Combine(outDir, ChartFile),
                TrainingChart.Svg($"{TrainingMethods.Name(options.Method)} on {TaskName(p.GetValue(data)!)}", losses,
                    accuracy, metric));
            if (accuracy.Count > 0) Console.WriteLine($"{TrainingMethods.Name(options.Method)}: dev {metric} {accuracy[^1].Accuracy:P2}");
            return Task.FromResult(0);
        });
        return command;
    }

    public static Command Eval()
    {
        var baseModel = new Option<string>("--base")
        {
            Description = "the foundation model the adapter was trained for",
            Required = true,
        };
        var adapterPath = new Option<string>("--adapter")
        {
            Description = "adapter directory or .safetensors",
            Required = true,
        };
        var data = new Option<string>("--data") { Description = "GLUE dev.tsv or .jsonl", Required = true };
        var encoderDir = new Option<string?>("--encoder-dir") { Description = "encoder files" };
        var limit = new Option<int>("--limit") { DefaultValueFactory = _ => int.MaxValue };
        var device = DeviceOption();
        var layout = LayoutOption();
        var instance = InstanceOption();
        var command = new Command("eval",
            "Score an adapter: accuracy on GLUE (label words), exact match on jsonl")
        {
            baseModel, adapterPath, data, encoderDir, limit, device, layout, instance,
        };
        command.SetAction((p, cancel) =>
        {
            LopaAdapter adapter;
            try { adapter = LopaAdapter.Load(p.GetValue(adapterPath)!); }
            catch (AdapterException e) { throw new InvalidOperationException(e.Message, e); }
            BaseModel fm = BaseModel.Load(p.GetValue(baseModel)!);
            IInstanceEncoder? encoder = adapter.Config.UsesEncoder
                ? EncoderFactory.Create(adapter.Config.Encoder!, EncodeCommands.Options(p.GetValue(encoderDir),
                    p.GetValue(baseModel), adapter.Config.Encoder!)) : null;
            var options = new TrainingOptions
            {
                Method = TrainingMethods.Of(adapter.Config.Composition), VirtualTokens = adapter.Config.NumVirtualTokens,
                Rank = adapter.Config.Rank, HiddenSize = adapter.Config.HiddenSize,
                Layout = p.GetValue(layout), Instance = p.GetValue(instance),
            };
            using var trainer = new LopaTrainer(fm.Weights, fm.Tokenizer, encoder, options, adapter,
                p.GetValue(device)!);
            List<TaskExample> set = TaskData.Load(p.GetValue(data)!, p.GetValue(limit));
            bool classification = set.All(e => e.Choices != null);
            var clock = Stopwatch.StartNew();
            double score = classification ? trainer.Accuracy(set, cancel: cancel) : trainer.ExactMatch(set, cancel);
            Console.WriteLine($"{(classification ? "accuracy" : "exact match")} {score.ToString("P2", CultureInfo.InvariantCulture)} on {set.Count} examples ({clock.Elapsed.TotalSeconds:F1} s)");
            return Task.FromResult(0);
        });
        return command;
    }

    /// <summary>Parameters, optimiser moments, step and the curves so far; written to a temp file and renamed, so a
    /// kill never leaves half a checkpoint.</summary>
    private static void SaveCheckpoint(string path, LopaTrainer trainer, TrainingOptimizer optimizer, long step,
        string optionsJson, List<double> losses, List<(int, double)> accuracy, List<double> epochSeconds)
    {
        var (optStep, mm, vv) = optimizer.SaveState();
        float[][] parameters = trainer.ParameterValues();
        var w = new SafeTensorsWriter().Metadata("step",
            step.ToString(CultureInfo.InvariantCulture)).Metadata("optimizer_step", optStep.ToString(CultureInfo.InvariantCulture))
            .Metadata("options", optionsJson).Metadata("loss", JsonSerializer.Serialize(losses))
            .Metadata("eval", JsonSerializer.Serialize(accuracy.Select(a => new[] { a.Item1,
                a.Item2 }))).Metadata("epoch_seconds", JsonSerializer.Serialize(epochSeconds));
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

    private static long LoadCheckpoint(string path, LopaTrainer trainer, TrainingOptimizer optimizer,
        string optionsJson, List<double> losses, List<(int, double)> accuracy, List<double> epochSeconds)
    {
        using var file = SafeTensorsFile.Open(path);
        if (file.Metadata.GetValueOrDefault("options") != optionsJson)
            throw new InvalidOperationException($"the checkpoint in {Path.GetDirectoryName(path)} was made with other options ({file.Metadata.GetValueOrDefault("options")}); train into a new --out or drop --resume");
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
        losses.AddRange(JsonSerializer.Deserialize<List<double>>(file.Metadata["loss"])!);
        accuracy.AddRange(JsonSerializer.Deserialize<List<double[]>>(file.Metadata["eval"])!.Select(a => ((int)a[0],
            a[1])));
        epochSeconds.AddRange(JsonSerializer.Deserialize<List<double>>(file.Metadata["epoch_seconds"])!);
        return step;
    }

    /// <summary>The task a data file belongs to, by its folder (…/SST-2/train.tsv → SST-2).</summary>
    private static string TaskName(string dataPath) =>
        Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(dataPath))) ?? dataPath;

    /// <summary>Epochs since the best dev score (the first epoch that reached it).</summary>
    private static int EpochsSinceBest(List<(int Epoch, double Score)> scores)
    {
        double best = scores.Max(s => s.Score);
        return scores.Count - 1 - scores.FindIndex(s => s.Score == best);
    }

    /// <summary>--layout completions|chat|both (System.CommandLine parses enum names, any case).</summary>
    private static Option<PromptLayout> LayoutOption() => new("--layout")
    {
        Description = "where Z sits, as the proxy will send it: completions ([Z; BOS prompt]), chat ([BOS; Z; prompt]) "
            + "or both",
        DefaultValueFactory = _ => PromptLayout.Completions,
    };

    /// <summary>--instance input|prompt.</summary>
    private static Option<InstanceSource> InstanceOption() => new("--instance")
    {
        Description = "what the encoder reads: input (the sentence, as the paper) or prompt (what the proxy reads "
            + "from a request)",
        DefaultValueFactory = _ => InstanceSource.Input,
    };

    private static Option<string> DeviceOption() => new("--device")
    {
        Description = "cpu, or cuda[:N] with a CUDA libtorch (docs/training.md)",
        DefaultValueFactory = _ => "cpu",
    };

    /// <summary>One line redrawn in place on a terminal; a line every 2 s when stderr is redirected (CI
    /// logs).</summary>
    private sealed class ProgressBar
    {
        private readonly bool _tty = !Console.IsErrorRedirected;
        private readonly Stopwatch _sinceLine = Stopwatch.StartNew();
        private bool _open;

        public void Report(TrainingProgress p)
        {
            const int Width = 30;
            int filled = (int)(Width * p.Step / Math.Max(1, p.TotalSteps));
            string text = $"[{new string('#', filled)}{new string('.', Width - filled)}] step {p.Step}/{p.TotalSteps} · epoch {p.Epoch} · loss {p.Loss:F4} · {p.ExamplesPerSecond:F1} ex/s · ETA {p.Remaining:hh\\:mm\\:ss}";
            if (_tty) { Console.Error.Write("\r" + text + "   "); _open = true; }
            else if (_sinceLine.Elapsed.TotalSeconds >= 2
                || p.Step == p.TotalSteps) { Console.Error.WriteLine(text); _sinceLine.Restart(); }
        }

        public void Line(string text)
        {
            if (_open) { Console.Error.WriteLine(); _open = false; }
            Console.Error.WriteLine(text);
        }

        public void Done() { if (_open) Console.Error.WriteLine(); _open = false; }
    }
}
