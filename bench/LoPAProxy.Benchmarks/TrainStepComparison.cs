using System.Diagnostics;
using System.Text.Json;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Core.Training;
using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// `compare train [method] [steps]`: training step time (batch 8 of real SST-2 rows, stories260K frozen, USE-lite
/// vectors, m = 10, r = 4, H = 256) against the same computation in PyTorch CPU (tests/python/lopa_reference.py,
/// float32, 2 threads) in the same run, on the same batches and starting weights. Encoder vectors are cached on
/// both sides (the encoder is frozen), so this times generator + decoder forward and backward + clipping + AdamW.
/// </summary>
public static class TrainStepComparison
{
    public static int Run(string method, int steps)
    {
        string shared = Environment.GetEnvironmentVariable("LOPA_SHARED") ?? Path.Combine(RepoDir(), "..", "shared");
        string models = Path.Combine(shared, "models", "stories260K");
        var ckpt = Llama2cCheckpoint.Load(Path.Combine(models, "stories260K.bin"));
        LlamaModel fm = LlamaModel.FromLlama2c(ckpt);
        var tokenizer = SentencePieceBpeTokenizer.Load(Path.Combine(models, "tok512.bin"), ckpt.Config.VocabSize);
        IInstanceEncoder encoder = EncoderFactory.Create("minilm", new EncoderOptions());
        var options = new TrainingOptions { Method = TrainingMethods.Parse(method), BatchSize = 8, WarmupRatio = 0 };
        var trainer = new LopaTrainer(fm, tokenizer, encoder, options);
        List<TaskExample> data = TaskData.Load(Path.Combine(shared, "data", "glue", "SST-2", "train.tsv"),
            steps * options.BatchSize);

        int m = options.Method == TrainingMethod.Lora ? 0 : options.VirtualTokens;
        var tokens = data.Select(e => TokenizedExample.Create(tokenizer, e.Prompt, e.Target,
            fm.Config.MaxSeqLen - m)).ToList();
        var x = new float[data.Count * encoder.Dim];
        encoder.Encode(data.Select(e => e.Instance).ToList(), x);
        var batches = Enumerable.Range(0, steps).Select(s => Enumerable.Range(s * options.BatchSize,
            options.BatchSize).ToArray()).ToList();
        string dir = Directory.CreateTempSubdirectory("lopa-train-bench").FullName;
        var (weights, meta) = PyTorchReferenceFiles.Write(dir, fm, trainer, x, encoder.Dim, tokens, batches);

        // Ours: same batches in the same order, features already cached (one untimed pass warms caches and the JIT).
        var batchExamples = batches.Select(b => (IReadOnlyList<TaskExample>)b.Select(i => data[i]).ToList()).ToList();
        void Step(IReadOnlyList<TaskExample> b)
        {
            trainer.ComputeGradients(b);
            var g = trainer.Gradients();
            LoPAProxy.Engine.Autograd.AdamW.ClipGradientNorm(g, 1.0);
            trainer.Optimizer.Update(g);
        }
        foreach (var b in batchExamples.Take(3)) Step(b);
        foreach (var b in batchExamples) trainer.ComputeGradients(b);   // caches every instance vector and tokenisation
        var sw = Stopwatch.StartNew();
        foreach (var b in batchExamples) Step(b);
        double ours = sw.Elapsed.TotalMilliseconds / steps;

        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("LOPA_PYTHON")
            ?? "/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { Path.Combine(RepoDir(), "tests", "python", "lopa_reference.py"), weights, meta,
            "bench", "2" }) psi.ArgumentList.Add(a);
        using var python = Process.Start(psi)!;
        string output = python.StandardOutput.ReadToEnd();
        string errors = python.StandardError.ReadToEnd();
        python.WaitForExit();
        if (python.ExitCode != 0) throw new InvalidOperationException("PyTorch side failed: " + errors);
        double torch = JsonDocument.Parse(output).RootElement.GetProperty("ms_per_step").GetDouble();
        Directory.Delete(dir, true);

        Console.WriteLine($"| method | steps × batch | ours ms/step | ours ex/s | PyTorch (2 threads) ms/step | PyTorch ex/s | ours / PyTorch |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        Console.WriteLine($"| {method} | {steps} × {options.BatchSize} | {ours:F2} | {options.BatchSize * 1000 / ours:F0} | {torch:F2} | {options.BatchSize * 1000 / torch:F0} | {ours / torch:F2}× |");
        return 0;
    }

    private static string RepoDir() => RepoPaths.RepoDir();
}
