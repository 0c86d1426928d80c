using LoPAProxy.Engine.Autograd;
using LoPAProxy.Engine.Kernels;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Engine.Tests.Networks;

/// <summary>The tape forward of the decoder (training) against the inference forward, and its gradients.</summary>
public class LlamaTrainingTests
{
    /// <summary>A tiny random decoder (2 layers, GQA 4:2) for finite differences.</summary>
    internal static LlamaModel Tiny(int seed, RotaryLayout rotary = RotaryLayout.Interleaved) =>
        TestModels.RandomLlama(new Random(seed), new LlamaConfig(Dim: 8, HiddenDim: 12, Layers: 2, Heads: 4, KvHeads: 2, HeadDim: 2, VocabSize: 11, MaxSeqLen: 32, 10000f, 1e-5f, rotary), 0.4f);

    [Fact]
    public void Logits_of_every_position_equal_the_inference_forward_on_stories260K_in_a_padded_batch()
    {
        LlamaModel model = TestModels.Stories.Model;
        int d = model.Config.Dim, vocab = model.Config.VocabSize;
        int[][] sequences = { new[] { 1, 403, 407, 261, 378, 402, 372 }, new[] { 1, 80, 345, 261 } };
        int T = sequences.Max(s => s.Length);
        var x = new float[sequences.Length * T * d];
        for (int b = 0; b < sequences.Length; b++) model.Embed(sequences[b], x.AsSpan(b * T * d, sequences[b].Length * d));
        var tape = new Tape();
        Variable hidden = model.Hidden(tape, tape.Parameter(x, sequences.Length * T, d), sequences.Length, T, sequences.Select(s => s.Length).ToArray());
        for (int b = 0; b < sequences.Length; b++)
        {
            var state = model.NewState();
            var expected = new float[vocab];
            for (int t = 0; t < sequences[b].Length; t++)
            {
                model.Forward(x.AsSpan((b * T + t) * d, d), 1, state, expected);
                Variable logits = model.Logits(tape, hidden, new[] { b * T + t });
                Rand.AssertClose(expected, logits.Value, 1e-4f, $"sequence {b} position {t}");
            }
        }
    }

    [Theory]
    [InlineData(RotaryLayout.Interleaved)]
    [InlineData(RotaryLayout.HalfSplit)]
    public void Gradient_to_the_input_rows_and_to_LoRA_matches_finite_differences(RotaryLayout rotary)
    {
        LlamaModel model = Tiny(3, rotary);
        int d = model.Config.Dim;
        const int B = 2, T = 5, R = 2;
        var rng = new Random(4);
        float[] x = Rand.Floats(rng, B * T * d);
        float[] loraA = Rand.Floats(rng, R * d, 0.3f), loraB = Rand.Floats(rng, model.Config.KvDim * R, 0.3f);
        int[] lengths = { 5, 3 }, rows = { 2, 3, 4, 6, 7 }, targets = { 4, 1, 7, 2, 9 };

        (Variable Loss, Variable X, Variable A, Variable Bv) Run()
        {
            var tape = new Tape();
            var xv = tape.Parameter(x, B * T, d);
            var a = tape.Parameter(loraA, R, d);
            var b = tape.Parameter(loraB, model.Config.KvDim, R);
            var lora = new LoraSet();
            lora.Add(1, "v", new LoraProjection(a, b, 2f));
            Variable loss = tape.CrossEntropy(model.Logits(tape, model.Hidden(tape, xv, B, T, lengths, lora), rows), targets);
            tape.Backward(loss);
            return (loss, xv, a, b);
        }

        var run = Run();
        // Padded positions (sequence 1, t ≥ 3) neither contribute nor receive gradient.
        Assert.All(run.X.Grad!.AsSpan((T + 3) * d, 2 * d).ToArray(), g => Assert.Equal(0f, g));
        foreach (var (buffer, grad) in new[] { (x, run.X.Grad!), (loraA, run.A.Grad!), (loraB, run.Bv.Grad!) })
            for (int n = 0; n < 24; n++)
            {
                int i = rng.Next(buffer.Length);
                float saved = buffer[i];
                const float Eps = 1e-2f;
                buffer[i] = saved + Eps; double plus = Run().Loss.Value[0];
                buffer[i] = saved - Eps; double minus = Run().Loss.Value[0];
                buffer[i] = saved;
                double numeric = (plus - minus) / (2 * Eps);
                Assert.True(Math.Abs(grad[i] - numeric) <= 3e-3 + 2e-2 * Math.Abs(numeric), $"element {i}: analytic {grad[i]}, numeric {numeric}");
            }
    }
}
