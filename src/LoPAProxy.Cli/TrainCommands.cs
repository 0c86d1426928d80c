using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Training;

namespace LoPAProxy.Cli;

/// <summary>
/// `lopa train` (an adapter the proxy loads as is, or a LoRA score) with a live progress bar, checkpoints every N steps
/// and --resume; `lopa eval` (an adapter's accuracy or exact match on a data file).
/// </summary>
internal static class TrainCommands
{

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
                Method = TrainingMethods.Parse(p.GetValue(method)!), VirtualTokens = p.GetValue(m),
                Rank = p.GetValue(r), HiddenSize = p.GetValue(hidden), Epochs = p.GetValue(epochs),
                BatchSize = p.GetValue(batch), LearningRate = p.GetValue(lr), WarmupRatio = p.GetValue(warmup),
                MaxGradNorm = p.GetValue(clip), Seed = p.GetValue(seed), MaxSteps = p.GetValue(maxSteps),
                Threads = p.GetValue(threads), Layout = p.GetValue(layout), Instance = p.GetValue(instance),
                LoraTargets = p.GetValue(loraTargets)!.Split(',',
                    StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            };
            IInstanceEncoder? encoder = options.Method is TrainingMethod.PromptTuning or TrainingMethod.Lora ? null
                : EncoderFactory.Create(p.GetValue(encoderName)!, EncodeCommands.Options(p.GetValue(encoderDir),
                    p.GetValue(baseModel), p.GetValue(encoderName)!));
            var settings = new TrainingRunSettings(BaseModel.Load(p.GetValue(baseModel)!), options,
                TaskData.Load(p.GetValue(data)!, p.GetValue(limit)),
                p.GetValue(evalData) is { } ev ? TaskData.Load(ev, p.GetValue(evalLimit)) : null, encoder,
                p.GetValue(output)!, TaskName(p.GetValue(data)!), p.GetValue(device)!, p.GetValue(resume),
                p.GetValue(patience), p.GetValue(checkpointEvery));
            return Task.FromResult(Run(settings, cancel));
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

    /// <summary>The task a data file belongs to, by its folder (…/SST-2/train.tsv → SST-2).</summary>
    private static string TaskName(string dataPath) =>
        Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(dataPath))) ?? dataPath;

    /// <summary>Runs the training with a progress bar on stderr; prints the last dev score.</summary>
    private static int Run(TrainingRunSettings settings, CancellationToken cancel)
    {
        var run = new TrainingRun(settings);
        var bar = new ProgressBar();
        run.Reported += bar.Line;
        run.Stepped += bar.Report;
        TrainingRunResult result = run.Run(cancel);
        bar.Done();
        if (result.Scores.Count > 0)
        {
            Console.WriteLine($"{TrainingMethods.Name(settings.Options.Method)}: dev {result.Metric} " +
                $"{result.Scores[^1].Score:P2}");
        }

        return 0;
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
