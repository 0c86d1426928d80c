using System.Diagnostics;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Engine.Autograd;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Core.Training;

/// <summary>
/// Trains one method with the FM frozen: each step builds [Z ; FM embedding rows of BOS + prompt + target] per example
/// (right-padded batch), runs the decoder on a tape, takes the mean cross-entropy over target tokens only, backpropagates
/// to the soft-prompt generator (or the LoRA updates), clips and applies AdamW. The instance encoder is frozen; its
/// vectors are cached per instance text. Deterministic for a seed: the order of epoch e is a permutation seeded by
/// (seed, e), so a run resumed at step s continues exactly as the uninterrupted one.
/// </summary>
public sealed class LopaTrainer
{
    private readonly LlamaModel _fm;
    private readonly ITokenizer _tokenizer;
    private readonly IInstanceEncoder? _encoder;
    private readonly Dictionary<string, float[]> _features = new(StringComparer.Ordinal);
    private readonly Dictionary<(string, string), TokenizedExample> _tokens = new();

    public TrainingOptions Options { get; }
    /// <summary>The soft-prompt generator being trained (null for LoRA).</summary>
    public TrainableSoftPrompt? Prompt { get; }
    /// <summary>The server-side baseline's updates (LoRA only).</summary>
    public FmLora? Lora { get; }
    public AdamW Optimizer { get; private set; }

    public LopaTrainer(LlamaModel fm, ITokenizer tokenizer, IInstanceEncoder? encoder, TrainingOptions options, LopaAdapter? initial = null)
    {
        _fm = fm;
        _tokenizer = tokenizer;
        Options = options;
        if (options.Method == TrainingMethod.Lora)
            Lora = new FmLora(fm.Config, options.Rank, options.LoraAlpha, options.LoraTargets, options.Seed);
        else
        {
            Composition composition = TrainingMethods.Composition(options.Method)!.Value;
            if (composition != Composition.PromptTuning && encoder is null) throw new ArgumentException($"{TrainingMethods.Name(options.Method)} needs an instance encoder");
            _encoder = composition == Composition.PromptTuning ? null : encoder;
            var config = new AdapterConfig
            {
                NumVirtualTokens = options.VirtualTokens, TokenDim = fm.Config.Dim, Rank = options.Rank, HiddenSize = options.HiddenSize,
                BaseModel = options.BaseModel, Encoder = _encoder?.Name, EncoderDim = _encoder?.Dim ?? 0, Composition = composition,
            };
            config.Validate();
            LopaAdapter adapter = initial ?? LopaAdapter.CreateRandom(config, options.Seed);
            if (adapter.Config.TokenDim != fm.Config.Dim) throw new ArgumentException($"adapter token dim {adapter.Config.TokenDim} ≠ the FM's {fm.Config.Dim}");
            Prompt = new TrainableSoftPrompt(adapter);
        }
        Optimizer = NewOptimizer(0);
    }

    public IReadOnlyList<float[]> Parameters => Prompt?.Parameters ?? Lora!.Parameters;
    public long TrainableParameters => Parameters.Sum(p => (long)p.Length);
    private int PromptRows => Prompt?.Rows ?? 0;

    private AdamW NewOptimizer(long totalSteps) => new(Parameters, Options.LearningRate)
    {
        WeightDecay = Options.WeightDecay,
        Schedule = Options.WarmupRatio > 0 && totalSteps > 0
            ? new LearningRateSchedule.ConstantWithWarmup((long)Math.Ceiling(Options.WarmupRatio * totalSteps))
            : new LearningRateSchedule.Constant(),
    };

    private (long Step, float[][] M, float[][] V)? _resumeState;

    /// <summary>Optimiser state from a checkpoint, applied when <see cref="Train"/> starts (the schedule needs the run's length).</summary>
    public void ResumeOptimizer(long optimizerStep, float[][] m, float[][] v) => _resumeState = (optimizerStep, m, v);

    public long StepsPerEpoch(int examples) => (examples + Options.BatchSize - 1) / Options.BatchSize;

    public long TotalSteps(int examples)
    {
        long all = StepsPerEpoch(examples) * Options.Epochs;
        return Options.MaxSteps > 0 ? Math.Min(all, Options.MaxSteps) : all;
    }

    private (int Epoch, int[] Order)? _order;   // this epoch's permutation, made once rather than per step

    /// <summary>The examples of optimiser step <paramref name="step"/> (0-based) — a pure function of seed and step.</summary>
    public IReadOnlyList<TaskExample> BatchOf(IReadOnlyList<TaskExample> data, long step)
    {
        long perEpoch = StepsPerEpoch(data.Count);
        int epoch = (int)(step / perEpoch), index = (int)(step % perEpoch);
        if (_order is not { } cached || cached.Epoch != epoch || cached.Order.Length != data.Count)
        {
            int[] order = Enumerable.Range(0, data.Count).ToArray();
            new Random((int)((Options.Seed * 1_000_003L + epoch) & int.MaxValue)).Shuffle(order); // not HashCode: it is salted per process
            _order = cached = (epoch, order);
        }
        int start = index * Options.BatchSize, count = Math.Min(Options.BatchSize, data.Count - start);
        var batch = new List<TaskExample>(count);
        foreach (int i in cached.Order.AsSpan(start, count)) batch.Add(data[i]);
        return batch;
    }

    /// <summary>
    /// Trains from optimiser step <paramref name="startStep"/> (0, or a checkpoint's) to the end, reporting each step;
    /// <paramref name="checkpoint"/> is called every <paramref name="checkpointEvery"/> steps and at the end.
    /// </summary>
    public void Train(IReadOnlyList<TaskExample> data, long startStep, Action<TrainingProgress>? progress = null,
        Action<long>? checkpoint = null, int checkpointEvery = 0, CancellationToken cancel = default)
    {
        if (data.Count == 0) throw new ArgumentException("no training examples");
        long total = TotalSteps(data.Count);
        Optimizer = NewOptimizer(total);
        if (_resumeState is { } saved) { Optimizer.LoadState(saved.Step, saved.M, saved.V); _resumeState = null; }
        var clock = Stopwatch.StartNew();
        long examples = 0;
        for (long step = startStep; step < total; step++)
        {
            cancel.ThrowIfCancellationRequested();
            IReadOnlyList<TaskExample> batch = BatchOf(data, step);
            double loss = ComputeGradients(batch);
            float[]?[] grads = Gradients();
            if (Options.MaxGradNorm > 0) AdamW.ClipGradientNorm(grads, Options.MaxGradNorm);
            Optimizer.Update(grads);
            examples += batch.Count;
            double rate = examples / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
            long left = total - step - 1;
            progress?.Invoke(new TrainingProgress(step + 1, total, (int)(step / StepsPerEpoch(data.Count)) + 1, loss, rate, clock.Elapsed,
                TimeSpan.FromSeconds(left * Options.BatchSize / Math.Max(1e-9, rate))));
            if (checkpoint != null && ((checkpointEvery > 0 && (step + 1) % checkpointEvery == 0) || step + 1 == total)) checkpoint(step + 1);
        }
    }

    /// <summary>Forward and backward of one batch; returns the loss. Gradients are then in <see cref="Gradients"/>.</summary>
    public double ComputeGradients(IReadOnlyList<TaskExample> batch)
    {
        var items = batch.Select(e => (e, Tokens(e.Prompt, e.Target))).ToList();
        var (tape, hidden, length) = Run(items, trainable: true);
        var (rows, targets, _) = TargetRows(items.Select(i => i.Item2).ToList(), length);
        Variable loss = tape.CrossEntropy(_fm.Logits(tape, hidden, rows), targets);
        tape.Backward(loss);
        return loss.Value[0];
    }

    public float[]?[] Gradients() => Prompt?.Gradients() ?? Lora!.Gradients();

    /// <summary>Classification accuracy: the choice whose tokens get the highest total log-probability after the prompt.</summary>
    public double Accuracy(IReadOnlyList<TaskExample> examples, int batchSize = 16, CancellationToken cancel = default)
    {
        int correct = 0;
        for (int start = 0; start < examples.Count; start += batchSize)
        {
            cancel.ThrowIfCancellationRequested();
            var chunk = examples.Skip(start).Take(batchSize).ToList();
            if (chunk.Any(e => e.Choices is null || e.Label < 0)) throw new ArgumentException("accuracy needs classification examples (choices and a label)");
            var items = chunk.SelectMany(e => e.Choices!.Select(c => (e, Tokens(e.Prompt, c)))).ToList();
            var (tape, hidden, length) = Run(items, trainable: false);
            var (rows, targets, owner) = TargetRows(items.Select(i => i.Item2).ToList(), length);
            float[] logits = _fm.Logits(tape, hidden, rows).Value;
            int vocab = _fm.Config.VocabSize;
            var score = new double[items.Count];
            for (int r = 0; r < rows.Length; r++) score[owner[r]] += LogProbability(logits.AsSpan(r * vocab, vocab), targets[r]);
            int at = 0;
            foreach (TaskExample e in chunk)
            {
                int best = 0;
                for (int c = 1; c < e.Choices!.Count; c++) if (score[at + c] > score[at + best]) best = c;
                if (best == e.Label) correct++;
                at += e.Choices.Count;
            }
        }
        return examples.Count == 0 ? 0 : (double)correct / examples.Count;
    }

    /// <summary>Exact match of the greedy continuation (as many tokens as the reference has, trimmed) with the target.</summary>
    public double ExactMatch(IReadOnlyList<TaskExample> examples, CancellationToken cancel = default)
    {
        int hits = 0;
        foreach (TaskExample e in examples)
        {
            cancel.ThrowIfCancellationRequested();
            TokenizedExample reference = Tokens(e.Prompt, e.Target);
            var ids = reference.Ids.Take(reference.PromptLength).ToList();
            for (int n = 0; n < reference.TargetLength && PromptRows + ids.Count < _fm.Config.MaxSeqLen; n++)
            {
                var (tape, hidden, length) = Run(new[] { (e, new TokenizedExample(ids.ToArray(), ids.Count)) }, trainable: false);
                float[] logits = _fm.Logits(tape, hidden, new[] { PromptRows + ids.Count - 1 }).Value;
                ids.Add(Sampler.ArgMax(logits));
            }
            string produced = _tokenizer.Decode(ids.Skip(reference.PromptLength).ToArray());
            if (produced.Trim() == e.Target.Trim()) hits++;
        }
        return examples.Count == 0 ? 0 : (double)hits / examples.Count;
    }

    private static double LogProbability(ReadOnlySpan<float> logits, int target)
    {
        float max = System.Numerics.Tensors.TensorPrimitives.Max(logits);
        double sum = 0;
        foreach (float l in logits) sum += Math.Exp(l - max);
        return logits[target] - max - Math.Log(sum);
    }

    private TokenizedExample Tokens(string prompt, string target)
    {
        if (!_tokens.TryGetValue((prompt, target), out var t))
            _tokens[(prompt, target)] = t = TokenizedExample.Create(_tokenizer, prompt, target, _fm.Config.MaxSeqLen - PromptRows);
        return t;
    }

    /// <summary>Instance vectors [n, h] for the examples, encoding (once) the ones not seen before.</summary>
    private float[]? Features(IReadOnlyList<TaskExample> examples)
    {
        if (_encoder is null) return null;
        var missing = examples.Select(e => e.Instance).Where(t => !_features.ContainsKey(t)).Distinct().ToList();
        if (missing.Count > 0)
        {
            var output = new float[missing.Count * _encoder.Dim];
            _encoder.Encode(missing, output);
            for (int i = 0; i < missing.Count; i++) _features[missing[i]] = output.AsSpan(i * _encoder.Dim, _encoder.Dim).ToArray();
        }
        return examples.SelectMany(e => _features[e.Instance]).ToArray();
    }

    /// <summary>The decoder's final hidden states of [Z_i ; embeddings of ids_i], right-padded to a common length.</summary>
    private (Tape Tape, Variable Hidden, int Length) Run(IReadOnlyList<(TaskExample Example, TokenizedExample Tokens)> items, bool trainable)
    {
        var tape = new Tape();
        int m = PromptRows, d = _fm.Config.Dim, b = items.Count;
        int length = items.Max(i => m + i.Tokens.Ids.Length);
        Variable? z = null;
        if (Prompt != null)
        {
            z = Prompt.Build(tape, Features(items.Select(i => i.Example).ToList()), b);
            if (!trainable) z = tape.Constant(z.Value, z.Shape);
        }
        Variable table = tape.Constant(_fm.TokenEmbedding, _fm.Config.VocabSize, d);
        var parts = new List<Variable>();
        for (int i = 0; i < b; i++)
        {
            if (z != null) parts.Add(tape.SliceRows(z, i * m, m));
            parts.Add(tape.Gather(table, items[i].Tokens.Ids));
            int pad = length - m - items[i].Tokens.Ids.Length;
            if (pad > 0) parts.Add(tape.Constant(new float[pad * d], pad, d));
        }
        LoraSet? lora = Lora?.Build(tape);
        Variable hidden = _fm.Hidden(tape, tape.ConcatRows(parts.ToArray()), b, length, items.Select(i => m + i.Tokens.Ids.Length).ToArray(), lora);
        return (tape, hidden, length);
    }

    /// <summary>Rows of the hidden states that predict target tokens, the token each predicts, and the item it belongs to.</summary>
    private (int[] Rows, int[] Targets, int[] Owner) TargetRows(IReadOnlyList<TokenizedExample> items, int length)
    {
        var rows = new List<int>(); var targets = new List<int>(); var owner = new List<int>();
        for (int i = 0; i < items.Count; i++)
            for (int j = items[i].PromptLength; j < items[i].Ids.Length; j++)
            {
                rows.Add(i * length + PromptRows + j - 1);   // the position before token j predicts it
                targets.Add(items[i].Ids[j]);
                owner.Add(i);
            }
        return (rows.ToArray(), targets.ToArray(), owner.ToArray());
    }
}
