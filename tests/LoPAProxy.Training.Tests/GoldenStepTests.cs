using System.Text.Json;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Engine.Formats.Embeddings;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Training.Tests;

/// <summary>
/// One training step of each method on a tiny random Llama (GQA, 2 layers, the real 512-token vocabulary), the
/// trainer on libtorch in float32, against a PyTorch reference written here in float64: the loss and every trainable
/// parameter's gradient within 1e-4.
/// </summary>
public class GoldenStepTests
{
    /// <summary>tests/python/lopa_reference.py, found above the test binaries.</summary>
    internal static string ReferenceScript()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "tests", "python", "lopa_reference.py");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException("tests/python/lopa_reference.py not found above the test binaries");
    }

    [Theory]
    [InlineData("prompt_tuning")]
    [InlineData("idpg")]
    [InlineData("lopa_add")]
    [InlineData("lopa")]
    [InlineData("lora")]
    public void One_step_matches_PyTorch(string methodName)
    {
        var tokenizer = TestModels.StoriesTokenizer();
        var rng = new Random(11);
        var c = new LlamaConfig(Dim: 16, HiddenDim: 24, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 4, VocabSize: 512, MaxSeqLen: 64, 10000f, 1e-5f, RotaryLayout.Interleaved);
        LlamaModel fm = TestModels.RandomLlama(rng, c);
        float[] R(int n, float s) => Rand.Floats(rng, n, s);
        var encoder = new FmMeanEncoder(tokenizer, new ArrayEmbeddingTable(fm.TokenEmbedding, c.Dim));
        var options = new TrainingOptions { Method = TrainingMethods.Parse(methodName), VirtualTokens = 3, Rank = 2, HiddenSize = 5 };
        using var trainer = new LopaTrainer(fm, tokenizer, encoder, options);
        // Every parameter random and non-zero (biases and LoRA's B start at zero, which would hide their paths).
        trainer.LoadParameterValues(trainer.ParameterValues().Select(p => R(p.Length, 0.5f)).ToArray());

        TaskExample[] batch =
        {
            new("a gorgeous , witty , seductive movie .", "a gorgeous , witty , seductive movie . Sentiment:", " positive"),
            new("it 's a mess", "it 's a mess Sentiment:", " negative"),
            new("the story is told with gusto and a lot of heart", "the story is told with gusto and a lot of heart Sentiment:", " positive"),
        };
        double loss = trainer.ComputeGradients(batch);
        float[]?[] grads = trainer.Gradients();

        string dir = TempDir.Create();
        var x = new float[batch.Length * c.Dim];
        encoder.Encode(batch.Select(e => e.Instance).ToList(), x);
        int m = options.Method == TrainingMethod.Lora ? 0 : options.VirtualTokens;
        var tokens = batch.Select(e => TokenizedExample.Create(tokenizer, e.Prompt, e.Target, c.MaxSeqLen - m)).ToList();
        var (weights, meta) = PyTorchReferenceFiles.Write(dir, fm, trainer, x, c.Dim, tokens, new[] { Enumerable.Range(0, batch.Length).ToArray() });

        using var reference = JsonDocument.Parse(PyTorch.Run(File.ReadAllText(ReferenceScript()), weights, meta, "golden"));
        Assert.Equal(reference.RootElement.GetProperty("loss").GetDouble(), loss, 4);
        var expected = reference.RootElement.GetProperty("grads").EnumerateArray().ToList();
        Assert.Equal(expected.Count, grads.Length);
        for (int i = 0; i < grads.Length; i++)
        {
            float[] want = expected[i].ValueKind == JsonValueKind.Null ? new float[trainer.Parameters[i].numel()]
                : expected[i].EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
            float[] got = grads[i] ?? new float[want.Length];
            Assert.True(want.Any(v => v != 0), $"parameter {i}: the reference gradient is all zero — the test would prove nothing");
            Rand.AssertClose(want, got, 1e-4f, $"{methodName} parameter {i}");
        }
    }
}
