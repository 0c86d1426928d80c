using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.Engine.Tokenizers;
using LoPAProxy.Training;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// `compare train [method] [steps] [stories260K|gpt2-small] [threads]`: training step time of the TorchSharp trainer
/// against
/// the same computation in PyTorch CPU (tests/python/lopa_reference.py, float32) in the same run, on the same batches
/// and starting weights: batch 8 of real SST-2 rows with MiniLM vectors cached (the encoder is frozen), m = 10,
/// r = 4, H = 256; generator + decoder forward and backward + clipping + AdamW. Both sides run the same intra-op
/// threads (default 2) with OMP_WAIT_POLICY=PASSIVE (stated in the output). gpt2-small is a random Llama of GPT-2
/// small's size (dim 768,
/// 12 layers, 12 heads, SwiGLU 2048, vocabulary 32,000). Peak memory: each process's peak resident set.
/// </summary>
public static class TrainStepComparison
{
    public static int Run(string method, int steps, string size = "stories260K", int threads = 2)
    {
        string shared = Environment.GetEnvironmentVariable("LOPA_SHARED")
            ?? Path.Combine(RepoPaths.RepoDir(), "..", "shared");
        string models = Path.Combine(shared, "models", "stories260K");
        var ckpt = Llama2cCheckpoint.Load(Path.Combine(models, "stories260K.bin"));
        var tokenizer = SentencePieceBpeTokenizer.Load(Path.Combine(models, "tok512.bin"), ckpt.Config.VocabSize);
        LlamaModel fm = size switch
        {
            "stories260K" => LlamaModel.FromLlama2c(ckpt),
            "gpt2-small" => RandomLlama(new LlamaConfig(768, 2048, 12, 12, 12, 64, 32000, 256, 10000f, 1e-5f,
                RotaryLayout.Interleaved)),
            _ => throw new ArgumentException($"size '{size}' is not stories260K or gpt2-small"),
        };
        IInstanceEncoder encoder = EncoderFactory.Create("minilm", new EncoderOptions());
        var options = new TrainingOptions
        {
            Method = TrainingMethods.Parse(method), BatchSize = 8, WarmupRatio = 0, Threads = threads,
        };
        using var trainer = new LopaTrainer(fm, tokenizer, encoder, options);
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

        // Ours: the same batches in the same order; three untimed steps warm up, and one untimed pass caches every
        // instance vector and tokenisation (as PyTorch's side has them precomputed).
        var batchExamples = batches.Select(b => (IReadOnlyList<TaskExample>)b.Select(i => data[i]).ToList()).ToList();
        TrainingOptimizer optimizer = trainer.Optimizer(steps);
        foreach (var b in batchExamples.Take(3)) trainer.Step(b, optimizer);
        foreach (var b in batchExamples) trainer.ComputeGradients(b);
        var clock = Stopwatch.StartNew();
        foreach (var b in batchExamples) trainer.Step(b, optimizer);
        double ours = clock.Elapsed.TotalMilliseconds / steps;
        long oursPeak = PeakResidentBytes();

        var (torchMs, torchPeak) = PyTorchSide(weights, meta, threads);
        Directory.Delete(dir, true);
        Console.WriteLine($"ours: TorchSharp 0.107.0 / libtorch 2.10.0, {TorchRuntime.Settings}; PyTorch: "
            + $"{threads} threads, OMP_WAIT_POLICY=PASSIVE");
        Console.WriteLine("| size | method | steps × batch | ours ms/step | PyTorch ms/step | ours / PyTorch "
            + "| ours peak RSS MiB | PyTorch peak RSS MiB |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|");
        Console.WriteLine($"| {size} | {method} | {steps} × {options.BatchSize} | {ours:F2} | {torchMs:F2} | "
            + $"{ours / torchMs:F2}× | {oursPeak >> 20} | {torchPeak >> 20} |");
        return 0;
    }

    private static (double MsPerStep, long PeakBytes) PyTorchSide(string weights, string meta, int threads)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("LOPA_PYTHON") ?? "/usr/bin/python3")
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        psi.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
        string script = Path.Combine(RepoPaths.RepoDir(), "tests", "python", "lopa_reference.py");
        string[] arguments = [script, weights, meta, "bench", threads.ToString(CultureInfo.InvariantCulture)];
        foreach (string a in arguments) psi.ArgumentList.Add(a);

        using var python = Process.Start(psi)!;
        string output = python.StandardOutput.ReadToEnd();
        string errors = python.StandardError.ReadToEnd();
        python.WaitForExit();
        if (python.ExitCode != 0) throw new InvalidOperationException("PyTorch side failed: " + errors);
        JsonElement result = JsonDocument.Parse(output).RootElement;
        return (result.GetProperty("ms_per_step").GetDouble(), result.GetProperty("peak_rss_bytes").GetInt64());
    }

    /// <summary>This process's peak resident set (VmHWM).</summary>
    private static long PeakResidentBytes()
    {
        string line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1],
            CultureInfo.InvariantCulture) * 1024;
    }

    /// <summary>A Llama of the given size with N(0, 0.02) weights and unit norms (speed only: the values do not
    /// matter, the shapes do).</summary>
    private static LlamaModel RandomLlama(LlamaConfig c)
    {
        var rng = new Random(1);
        float[] R(int n)
        {
            var a = new float[n];
            for (int i = 0; i < n; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * 0.035);
            return a;
        }
        float[] Ones(int n) => Enumerable.Repeat(1f, n).ToArray();
        var layers = Enumerable.Range(0, c.Layers).Select(_ => new LlamaLayer(Ones(c.Dim), R(c.QDim * c.Dim),
            R(c.KvDim * c.Dim), R(c.KvDim * c.Dim), R(c.Dim * c.QDim), Ones(c.Dim), R(c.HiddenDim * c.Dim),
            R(c.Dim * c.HiddenDim), R(c.HiddenDim * c.Dim))).ToList();
        float[] embedding = R(c.VocabSize * c.Dim);
        return new LlamaModel(c, embedding, layers, Ones(c.Dim), embedding);
    }
}
