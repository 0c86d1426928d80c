using System.Diagnostics;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.Engine.Tokenizers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoPAProxy.Training;

/// <summary>
/// Trains one method on libtorch with the FM frozen: each step builds [Z ; FM embedding rows of BOS + prompt + target]
/// per example (right-padded batch), runs the decoder, takes the mean cross-entropy over target tokens only,
/// backpropagates to the soft-prompt generator (or the LoRA updates), clips (clip_grad_norm_) and steps
/// torch.optim.AdamW. The instance encoder is the proxy's (ONNX Runtime), frozen; its vectors are cached per instance
/// text. Deterministic for a seed: the order of epoch e is a permutation seeded by (seed, e), so a run resumed at step
/// s continues exactly as the uninterrupted one.
/// </summary>
public sealed class LopaTrainer : IDisposable
{
    private readonly FrozenLlama _fm;
    private readonly ITokenizer _tokenizer;
    private readonly IInstanceEncoder? _encoder;
    private readonly Dictionary<string, float[]> _features = new(StringComparer.Ordinal);
    private readonly Dictionary<(string, string), TokenizedExample> _tokens = new();
    private readonly IReadOnlyList<Parameter> _parameters;
    private AdamW? _optimizer;
    private (int Epoch, int[] Order)? _order;   // this epoch's permutation, made once rather than per step

    public TrainingOptions Options { get; }
    public Device Device { get; }
    /// <summary>The soft-prompt generator being trained (null for LoRA).</summary>
    public TrainableSoftPrompt? Prompt { get; }
    /// <summary>The server-side baseline's updates (LoRA only).</summary>
    public LoraUpdates? Lora { get; }

    public LopaTrainer(LlamaModel fm, ITokenizer tokenizer, IInstanceEncoder? encoder, TrainingOptions options,
        LopaAdapter? initial = null, string device = "cpu")
    {
        Device = TorchRuntime.Device(device);
        TorchRuntime.Configure(options.Threads > 0 ? options.Threads : DefaultThreads(fm.Config));
        torch.manual_seed(options.Seed);
        _fm = new FrozenLlama(fm, Device);
        _tokenizer = tokenizer;
        Options = options;
        if (options.Method == TrainingMethod.Lora)
        {
            Lora = new LoraUpdates(fm.Config, options.Rank, options.LoraAlpha, options.LoraTargets, options.Seed,
                Device);
        }
        else
        {
            Composition composition = TrainingMethods.Composition(options.Method)!.Value;
            if (composition != Composition.PromptTuning && encoder is null)
                throw new ArgumentException($"{TrainingMethods.Name(options.Method)} needs an instance encoder");
            _encoder = composition == Composition.PromptTuning ? null : encoder;
            LopaAdapter adapter = initial ?? LopaAdapter.CreateRandom(NewConfig(fm.Config.Dim, composition),
                options.Seed);
            if (adapter.Config.TokenDim != fm.Config.Dim)
                throw new ArgumentException($"adapter token dim {adapter.Config.TokenDim} ≠ the FM's {fm.Config.Dim}");
            Prompt = new TrainableSoftPrompt(adapter, Device);
        }
        _parameters = Prompt?.Parameters ?? Lora!.Parameters;
    }

    /// <summary>
    /// libtorch's default is one thread per core; for a small FM (width under 256) the per-op work is too small to
    /// split and waking a second thread costs more than it saves (stories260K: 1 thread 0.87–0.95× PyTorch's step
    /// time, 2 threads 1.4×; docs/training.md), so small models get one.
    /// </summary>
    private static int DefaultThreads(LlamaConfig c) => c.Dim < 256 ? 1 : 0;

    private AdapterConfig NewConfig(int tokenDim, Composition composition)
    {
        var config = new AdapterConfig
        {
            NumVirtualTokens = Options.VirtualTokens, TokenDim = tokenDim, Rank = Options.Rank,
            HiddenSize = Options.HiddenSize, BaseModel = Options.BaseModel, Encoder = _encoder?.Name,
            EncoderDim = _encoder?.Dim ?? 0, Composition = composition,
        };
        config.Validate();
        return config;
    }

    public IReadOnlyList<Parameter> Parameters => _parameters;
    public long TrainableParameters => _parameters.Sum(p => p.numel());
    private int PromptRows => Prompt?.Rows ?? 0;

    /// <summary>Every parameter's values (CPU copies), in <see cref="Parameters"/> order.</summary>
    public float[][] ParameterValues() => _parameters.Select(p => Trainable.Values(p)).ToArray();

    /// <summary>Overwrites every parameter (checkpoints, tests).</summary>
    public void LoadParameterValues(IReadOnlyList<float[]> values)
    {
        if (values.Count != _parameters.Count)
            throw new ArgumentException($"{values.Count} parameter buffers for {_parameters.Count} parameters");
        for (int i = 0; i < values.Count; i++) Trainable.Assign((Parameter)_parameters[i], values[i]);
    }

    public long StepsPerEpoch(int examples) => (examples + Options.BatchSize - 1) / Options.BatchSize;

    public long TotalSteps(int examples)
    {
        long all = StepsPerEpoch(examples) * Options.Epochs;
        return Options.MaxSteps > 0 ? Math.Min(all, Options.MaxSteps) : all;
    }

    /// <summary>The examples of optimiser step <paramref name="step"/> (0-based) — a pure function of seed and
    /// step.</summary>
    public IReadOnlyList<TaskExample> BatchOf(IReadOnlyList<TaskExample> data, long step)
    {
        long perEpoch = StepsPerEpoch(data.Count);
        int epoch = (int)(step / perEpoch), index = (int)(step % perEpoch);
        if (_order is not { } cached || cached.Epoch != epoch || cached.Order.Length != data.Count)
        {
            int[] order = Enumerable.Range(0, data.Count).ToArray();
            // Not HashCode: it is salted per process.
            new Random((int)((Options.Seed * 1_000_003L + epoch) & int.MaxValue)).Shuffle(order);
            _order = cached = (epoch, order);
        }
        int start = index * Options.BatchSize, count = Math.Min(Options.BatchSize, data.Count - start);
        var batch = new List<TaskExample>(count);
        foreach (int i in cached.Order.AsSpan(start, count)) batch.Add(data[i]);
        return batch;
    }

    /// <summary>The optimiser for a run of <paramref name="totalSteps"/> steps (the schedule needs its
    /// length).</summary>
    public TrainingOptimizer Optimizer(long totalSteps)
    {
        _optimizer ??= optim.AdamW(_parameters, Options.LearningRate, beta1: 0.9, beta2: 0.999, eps: 1e-8,
            weight_decay: Options.WeightDecay);
        LearningRateSchedule schedule = Options.WarmupRatio > 0 && totalSteps > 0
            ? new LearningRateSchedule.ConstantWithWarmup((long)Math.Ceiling(Options.WarmupRatio * totalSteps))
            : new LearningRateSchedule.Constant();
        return new TrainingOptimizer(_optimizer, _parameters, Options.LearningRate, schedule);
    }

    /// <summary>
    /// Trains from optimiser step <paramref name="startStep"/> (0, or a checkpoint's) to the end, reporting each
    /// step; <paramref name="checkpoint"/> is called every <paramref name="checkpointEvery"/> steps and at the end.
    /// </summary>
    public void Train(IReadOnlyList<TaskExample> data, long startStep, TrainingOptimizer optimizer,
        Action<TrainingProgress>? progress = null, Action<long>? checkpoint = null, int checkpointEvery = 0,
        CancellationToken cancel = default)
    {
        if (data.Count == 0) throw new ArgumentException("no training examples");
        long total = TotalSteps(data.Count);
        var clock = Stopwatch.StartNew();
        long examples = 0;
        for (long step = startStep; step < total; step++)
        {
            cancel.ThrowIfCancellationRequested();
            IReadOnlyList<TaskExample> batch = BatchOf(data, step);
            double loss = Step(batch, optimizer);
            examples += batch.Count;
            double rate = examples / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
            long left = total - step - 1;
            var remaining = TimeSpan.FromSeconds(left * Options.BatchSize / Math.Max(1e-9, rate));
            int epoch = (int)(step / StepsPerEpoch(data.Count)) + 1;
            progress?.Invoke(new TrainingProgress(step + 1, total, epoch, loss, rate, clock.Elapsed, remaining));
            bool due = (checkpointEvery > 0 && (step + 1) % checkpointEvery == 0) || step + 1 == total;
            if (checkpoint != null && due) checkpoint(step + 1);
        }
        Prompt?.WriteBack();
    }

    /// <summary>One optimiser step on a batch: gradients, clipping, AdamW. Returns the loss.</summary>
    public double Step(IReadOnlyList<TaskExample> batch, TrainingOptimizer optimizer)
    {
        optimizer.ZeroGrad();
        double loss = ComputeGradients(batch);
        if (Options.MaxGradNorm > 0) nn.utils.clip_grad_norm_(_parameters, Options.MaxGradNorm);
        optimizer.Step();
        return loss;
    }

    /// <summary>Forward and backward of one batch (gradients accumulate into the parameters' .grad); returns the
    /// loss.</summary>
    public double ComputeGradients(IReadOnlyList<TaskExample> batch)
    {
        using var scope = NewDisposeScope();
        var items = batch.Select(e => (e, Tokens(e.Prompt, e.Target))).ToList();
        Tensor hidden = Run(items);
        var (rows, targets, _) = TargetRows(items.Select(i => i.Item2).ToList(), hidden.shape[1]);
        Tensor selected = hidden.flatten(0, 1).index_select(0, rows);
        Tensor loss = nn.functional.cross_entropy(_fm.Logits(selected), targets);
        loss.backward();
        return loss.item<float>();
    }

    /// <summary>The parameters' gradients (CPU copies; null where none reached), in <see cref="Parameters"/>
    /// order.</summary>
    public float[]?[] Gradients() => _parameters.Select(p => p.grad is { } g ? Trainable.Values(g) : null).ToArray();

    /// <summary>
    /// Classification accuracy: the choice whose tokens, up to the first one where the choices differ, get the
    /// highest log-probability after the prompt. The decision is that token; what follows is the label word's
    /// spelling (in stories260K's vocabulary " positive" is 6 pieces, " negative" 5), which a method could learn
    /// without learning the task — scoring it rewarded LoRA for spelling (docs/training.md).
    /// </summary>
    public double Accuracy(IReadOnlyList<TaskExample> examples, int batchSize = 16, CancellationToken cancel = default)
    {
        if (examples.Any(e => e.Choices is null || e.Label < 0))
            throw new ArgumentException("accuracy needs classification examples (choices and a label)");
        int correct = 0;
        using var noGrad = no_grad();
        for (int start = 0; start < examples.Count; start += batchSize)
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var chunk = examples.Skip(start).Take(batchSize).ToList();
            var items = chunk.SelectMany(e => DecisionTokens(e).Select(t => (e, t))).ToList();
            Tensor hidden = Run(items);
            var (rows, targets, owner) = TargetRows(items.Select(i => i.Item2).ToList(), hidden.shape[1]);
            Tensor logProbabilities = nn.functional.log_softmax(_fm.Logits(hidden.flatten(0, 1).index_select(0, rows)),
                -1).gather(1, targets.unsqueeze(1)).squeeze(1);
            Tensor scores = zeros(items.Count, ScalarType.Float64, Device)
                .index_add_(0, owner, logProbabilities.to(ScalarType.Float64), 1.0);
            double[] score = Trainable.Values(scores).Select(v => (double)v).ToArray();
            correct += CountCorrect(chunk, score);
        }
        return examples.Count == 0 ? 0 : (double)correct / examples.Count;
    }

    /// <summary>Each choice's tokens cut after the first target position where the choices differ.</summary>
    private IEnumerable<TokenizedExample> DecisionTokens(TaskExample e)
    {
        var choices = e.Choices!.Select(c => Tokens(e.Prompt, c)).ToList();
        int decision = choices.Max(c => c.Ids.Length) - 1;
        for (int j = choices.Min(c => c.PromptLength); j < choices.Max(c => c.Ids.Length); j++)
        {
            int at = j;
            if (choices.Any(c => at >= c.Ids.Length || c.Ids[at] != choices[0].Ids[at]))
            {
                decision = j;
                break;
            }
        }
        return choices.Select(c => c with { Ids = c.Ids[..Math.Min(c.Ids.Length, decision + 1)] });
    }

    private static int CountCorrect(IReadOnlyList<TaskExample> chunk, double[] score)
    {
        int correct = 0, at = 0;
        foreach (TaskExample e in chunk)
        {
            int best = 0;
            for (int c = 1; c < e.Choices!.Count; c++)
                if (score[at + c] > score[at + best]) best = c;
            if (best == e.Label) correct++;
            at += e.Choices.Count;
        }
        return correct;
    }

    /// <summary>Exact match of the greedy continuation (as many tokens as the reference has, trimmed) with the
    /// target.</summary>
    public double ExactMatch(IReadOnlyList<TaskExample> examples, CancellationToken cancel = default)
    {
        int hits = 0;
        using var noGrad = no_grad();
        foreach (TaskExample e in examples)
        {
            cancel.ThrowIfCancellationRequested();
            TokenizedExample reference = Tokens(e.Prompt, e.Target);
            var ids = reference.Ids.Take(reference.PromptLength).ToList();
            for (int n = 0; n < reference.TargetLength && PromptRows + ids.Count < _fm.Config.MaxSeqLen; n++)
            {
                using var scope = NewDisposeScope();
                Tensor hidden = Run(new[] { (e, new TokenizedExample(ids.ToArray(), ids.Count)) });
                Tensor last = hidden[0, PromptRows + ids.Count - 1].unsqueeze(0);
                ids.Add((int)_fm.Logits(last).argmax(-1).item<long>());
            }
            string produced = _tokenizer.Decode(ids.Skip(reference.PromptLength).ToArray());
            if (produced.Trim() == e.Target.Trim()) hits++;
        }
        return examples.Count == 0 ? 0 : (double)hits / examples.Count;
    }

    private TokenizedExample Tokens(string prompt, string target)
    {
        if (!_tokens.TryGetValue((prompt, target), out var t))
        {
            _tokens[(prompt, target)] = t = TokenizedExample.Create(_tokenizer, prompt, target,
                _fm.Config.MaxSeqLen - PromptRows);
        }

        return t;
    }

    private string InstanceOf(TaskExample e) => Options.Instance == InstanceSource.Prompt ? e.Prompt : e.Instance;

    /// <summary>Instance vectors [n, h] for the examples, encoding (once) the ones not seen before.</summary>
    private Tensor? Features(IReadOnlyList<TaskExample> examples)
    {
        if (_encoder is null) return null;
        var missing = examples.Select(InstanceOf).Where(t => !_features.ContainsKey(t)).Distinct().ToList();
        if (missing.Count > 0)
        {
            var output = new float[missing.Count * _encoder.Dim];
            _encoder.Encode(missing, output);
            for (int i = 0; i < missing.Count; i++)
                _features[missing[i]] = output.AsSpan(i * _encoder.Dim, _encoder.Dim).ToArray();
        }
        float[] x = examples.SelectMany(e => _features[InstanceOf(e)]).ToArray();
        return tensor(x, new long[] { examples.Count, _encoder.Dim }, ScalarType.Float32, Device);
    }

    /// <summary>The decoder's final hidden states [B, L, d] of [Z_i ; embeddings of ids_i], right-padded.</summary>
    private Tensor Run(IReadOnlyList<(TaskExample Example, TokenizedExample Tokens)> items)
    {
        int m = PromptRows, b = items.Count;
        int width = items.Max(i => i.Tokens.Ids.Length);
        var ids = new long[b * width];
        var lengths = new long[b];
        for (int i = 0; i < b; i++)
        {
            int[] row = items[i].Tokens.Ids;
            for (int j = 0; j < row.Length; j++) ids[i * width + j] = row[j];
            lengths[i] = m + row.Length;
        }
        Tensor tokens = _fm.Embedding.index_select(0, tensor(ids, device: Device)).view(b, width, -1);
        if (Prompt is null) return _fm.Hidden(tokens, tensor(lengths, device: Device), Lora);
        Tensor z = Prompt.Build(Features(items.Select(i => i.Example).ToList()), b);
        bool[] chat = items.Select(i => ChatLayout(i.Example)).ToArray();
        return _fm.Hidden(Layout(z, tokens, chat), tensor(lengths, device: Device), Lora);
    }

    /// <summary>Whether the example is laid out as chat: always, never, or (Both) by a stable hash of its prompt, so
    /// half the data trains each layout and a resumed run sees the same layouts.</summary>
    private bool ChatLayout(TaskExample e) => Options.Layout switch
    {
        PromptLayout.Chat => true,
        PromptLayout.Completions => false,
        _ => StableHash(e.Prompt) % 2 == 0,
    };

    private static uint StableHash(string text)
    {
        uint hash = 2166136261;                     // FNV-1a: string.GetHashCode is salted per process
        foreach (char c in text) hash = (hash ^ c) * 16777619;
        return hash;
    }

    /// <summary>
    /// [Z ; BOS prompt] (completions) or [BOS ; Z ; prompt] (chat), per example. Either way token j ≥ 1 sits at
    /// position m + j, so the rows that predict targets are the same; only the inputs differ.
    /// </summary>
    private Tensor Layout(Tensor z, Tensor tokens, bool[] chat)
    {
        Tensor completions = cat(new[] { z, tokens }, 1);
        if (!chat.Any(c => c)) return completions;
        long width = tokens.shape[1];
        Tensor chatRows = cat(new[] { tokens.narrow(1, 0, 1), z, tokens.narrow(1, 1, width - 1) }, 1);
        if (chat.All(c => c)) return chatRows;
        Tensor useChat = tensor(chat, device: Device).view(chat.Length, 1, 1);
        return where(useChat, chatRows, completions);
    }

    /// <summary>Flat rows of the [B, L] hidden states that predict target tokens, the token each predicts, and the
    /// item it belongs to.</summary>
    private (Tensor Rows, Tensor Targets, Tensor Owner) TargetRows(IReadOnlyList<TokenizedExample> items, long length)
    {
        var rows = new List<long>();
        var targets = new List<long>();
        var owner = new List<long>();
        for (int i = 0; i < items.Count; i++)
        {
            for (int j = items[i].PromptLength; j < items[i].Ids.Length; j++)
            {
                rows.Add(i * length + PromptRows + j - 1);   // the position before token j predicts it
                targets.Add(items[i].Ids[j]);
                owner.Add(i);
            }
        }

        return (tensor(rows.ToArray(), device: Device), tensor(targets.ToArray(), device: Device),
            tensor(owner.ToArray(), device: Device));
    }

    public void Dispose()
    {
        _optimizer?.Dispose();
        Prompt?.Dispose();
        Lora?.Dispose();
        _fm.Dispose();
    }
}
