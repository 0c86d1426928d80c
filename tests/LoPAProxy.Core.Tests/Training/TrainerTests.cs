using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Core.Generation;
using LoPAProxy.Core.Training;
using LoPAProxy.Engine.Autograd;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Core.Tests.Training;

/// <summary>The trainer on stories260K and real SST-2 rows: what it trains is what the proxy serves; it learns; it is deterministic and resumable.</summary>
public class TrainerTests
{
    private static (LlamaModel Fm, SentencePieceBpeTokenizer Tokenizer) Stories => TestModels.Stories;

    private static List<TaskExample> Sst2(string split, int n) => TaskData.Load(SharedFiles.Path_("data", "glue", "SST-2", split + ".tsv"), n);

    private static LopaTrainer NewTrainer(TrainingMethod method, TrainingOptions? options = null, LopaAdapter? initial = null)
    {
        var (fm, tok) = Stories;
        var encoder = new FmMeanEncoder(tok, fm.TokenEmbedding, fm.Config.Dim);
        return new LopaTrainer(fm, tok, encoder, (options ?? new TrainingOptions { HiddenSize = 32, BatchSize = 4 }) with { Method = method }, initial);
    }

    [Theory]
    [InlineData(TrainingMethod.PromptTuning)]
    [InlineData(TrainingMethod.Idpg)]
    [InlineData(TrainingMethod.LopaAdd)]
    [InlineData(TrainingMethod.Lopa)]
    public void The_soft_prompt_trained_is_the_one_the_proxy_generates(TrainingMethod method)
    {
        LopaTrainer trainer = NewTrainer(method);
        foreach (float[] p in trainer.Parameters) Rand.Floats(new Random(p.Length), p.Length, 0.5f).CopyTo(p, 0);
        var (fm, tok) = Stories;
        var encoder = new FmMeanEncoder(tok, fm.TokenEmbedding, fm.Config.Dim);
        string[] texts = { "a gorgeous movie", "it 's a mess", "the story is told with gusto" };
        var x = new float[texts.Length * encoder.Dim];
        encoder.Encode(texts, x);
        var tape = new Tape();
        float[] trained = trainer.Prompt!.Build(tape, method == TrainingMethod.PromptTuning ? null : x, texts.Length).Value;
        float[] served = new SoftPromptGenerator(trainer.Prompt.Adapter).Generate(x, texts.Length);
        Rand.AssertClose(served, trained, 1e-5f);
    }

    [Theory]
    [InlineData(TrainingMethod.Lopa)]
    [InlineData(TrainingMethod.Lora)]
    public void Training_lowers_the_loss_on_what_it_trains_on(TrainingMethod method)
    {
        List<TaskExample> data = Sst2("train", 16);
        LopaTrainer trainer = NewTrainer(method, new TrainingOptions { HiddenSize = 32, BatchSize = 16, Epochs = 30, LearningRate = 3e-3, WarmupRatio = 0 });
        double before = trainer.ComputeGradients(data);
        trainer.Train(data, 0);
        double after = trainer.ComputeGradients(data);
        Assert.True(after < 0.8 * before, $"loss {before:F4} → {after:F4}");
    }

    [Fact]
    public void A_resumed_run_ends_bit_for_bit_where_the_uninterrupted_one_does()
    {
        List<TaskExample> data = Sst2("train", 24);
        var options = new TrainingOptions { HiddenSize = 16, BatchSize = 5, Epochs = 2, WarmupRatio = 0.2, Seed = 3 };
        LopaTrainer straight = NewTrainer(TrainingMethod.Lopa, options);
        straight.Train(data, 0);

        LopaTrainer first = NewTrainer(TrainingMethod.Lopa, options);
        using var stop = new CancellationTokenSource();
        Assert.Throws<OperationCanceledException>(() => first.Train(data, 0, p => { if (p.Step == 4) stop.Cancel(); }, cancel: stop.Token));
        var (optStep, m, v) = first.Optimizer.SaveState();
        Assert.Equal(4, optStep);
        LopaTrainer resumed = NewTrainer(TrainingMethod.Lopa, options, first.Prompt!.Adapter);
        resumed.ResumeOptimizer(optStep, m, v);
        resumed.Train(data, 4);

        for (int i = 0; i < straight.Parameters.Count; i++) Assert.Equal(straight.Parameters[i], resumed.Parameters[i]);
        Assert.Equal(straight.TotalSteps(data.Count), resumed.Optimizer.Step);
    }

    [Fact]
    public void Accuracy_scores_label_words_and_exact_match_decodes_greedily()
    {
        LopaTrainer trainer = NewTrainer(TrainingMethod.PromptTuning);
        List<TaskExample> dev = Sst2("dev", 40);
        double accuracy = trainer.Accuracy(dev, batchSize: 7);
        Assert.InRange(accuracy, 0, 1);
        // Whatever the model prefers, flipping every label turns accuracy a into 1 − a: the scores decide, not the order.
        var flipped = dev.Select(e => e with { Label = 1 - e.Label, Target = e.Choices![1 - e.Label] }).ToList();
        Assert.Equal(1 - accuracy, trainer.Accuracy(flipped, batchSize: 5), 9);

        // Greedy exact match: the model's own greedy continuation is an exact match by construction; a different text is not.
        var (fm, tok) = Stories;
        string prompt = "Once upon a time";
        var generator = new LlamaGenerator(fm);
        int[] ids = tok.Encode(prompt, addBos: true, addEos: false);
        float[] rows = new float[(trainer.Prompt!.Rows + ids.Length) * fm.Config.Dim];
        new SoftPromptGenerator(trainer.Prompt.Adapter).Generate(ReadOnlySpan<float>.Empty, 1).CopyTo(rows, 0);
        fm.Embed(ids, rows.AsSpan(trainer.Prompt.Rows * fm.Config.Dim));
        int[] produced = generator.Generate(rows, trainer.Prompt.Rows + ids.Length, 4, new Sampler(fm.Config.VocabSize), new HashSet<int>()).ToArray();
        ITokenizer text = tok;
        string continuation = text.Decode(ids.Concat(produced).ToArray())[text.Decode(ids).Length..];
        Assert.Equal(1.0, trainer.ExactMatch(new[] { new TaskExample(prompt, prompt, continuation) }));
        Assert.Equal(0.0, trainer.ExactMatch(new[] { new TaskExample(prompt, prompt, continuation + " zebra") }));
    }
}
