using LoPAProxy.Engine.Autograd;
using LoPAProxy.Engine.Kernels;

namespace LoPAProxy.Engine.Tests.Autograd;

/// <summary>
/// Every op's gradient against central finite differences: loss = Σ op(inputs) ∘ W for a fixed random W, so every
/// output element's gradient path is exercised with a different weight.
/// </summary>
public class GradientCheckTests
{
    /// <summary>Builds the op's output from the leaves (all trainable).</summary>
    private delegate Variable Op(Tape tape, Variable[] inputs);

    private static float[] Rand(Random rng, int n, float scale = 1f, float awayFromZero = 0f)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            float v = (float)(rng.NextDouble() * 2 - 1) * scale;
            x[i] = v + MathF.Sign(v) * awayFromZero;
        }
        return x;
    }

    /// <summary>Σ op(leaves) ∘ weights on a fresh tape.</summary>
    private static Variable Loss(Op op, float[][] values, int[][] shapes, float[] weights, out Variable[] leaves, out Tape tape)
    {
        tape = new Tape();
        var t = tape;
        leaves = values.Select((v, i) => t.Parameter(v, shapes[i])).ToArray();
        Variable y = op(tape, leaves);
        return tape.Sum(tape.Mul(y, tape.Constant(weights, y.Shape)));
    }

    private static void Check(Op op, int seed, params (int[] Shape, float[] Value)[] inputs)
    {
        var rng = new Random(seed);
        float[][] values = inputs.Select(i => i.Value).ToArray();
        int[][] shapes = inputs.Select(i => i.Shape).ToArray();
        // Output size from a dry run, then fixed weights.
        var probe = new Tape();
        var probeLeaves = values.Select((v, i) => probe.Constant(v, shapes[i])).ToArray();
        float[] weights = Rand(rng, op(probe, probeLeaves).Count);

        Variable loss = Loss(op, values, shapes, weights, out Variable[] leaves, out Tape tape);
        tape.Backward(loss);

        const float Eps = 1e-2f;
        for (int input = 0; input < values.Length; input++)
        {
            float[] analytic = leaves[input].Grad ?? new float[values[input].Length];
            int n = values[input].Length;
            // Every element for small inputs, a random sample of 48 for larger ones.
            IEnumerable<int> indices = n <= 64 ? Enumerable.Range(0, n) : Enumerable.Range(0, 48).Select(_ => rng.Next(n));
            foreach (int i in indices)
            {
                float saved = values[input][i];
                values[input][i] = saved + Eps;
                double plus = Loss(op, values, shapes, weights, out _, out _).Value[0];
                values[input][i] = saved - Eps;
                double minus = Loss(op, values, shapes, weights, out _, out _).Value[0];
                values[input][i] = saved;
                double numeric = (plus - minus) / (2 * Eps);
                Assert.True(Math.Abs(analytic[i] - numeric) <= 3e-3 + 2e-2 * Math.Abs(numeric),
                    $"input {input} element {i}: analytic {analytic[i]}, numeric {numeric}");
            }
        }
    }

    [Fact]
    public void MatMul_both_layouts_and_Linear_with_bias()
    {
        var rng = new Random(1);
        Check((t, x) => t.MatMul(x[0], x[1]), 1, (new[] { 3, 5 }, Rand(rng, 15)), (new[] { 5, 4 }, Rand(rng, 20)));
        Check((t, x) => t.MatMul(x[0], x[1], transB: true), 2, (new[] { 3, 5 }, Rand(rng, 15)), (new[] { 4, 5 }, Rand(rng, 20)));
        Check((t, x) => t.Linear(x[0], x[1], x[2]), 3, (new[] { 7, 6 }, Rand(rng, 42)), (new[] { 9, 6 }, Rand(rng, 54)), (new[] { 9 }, Rand(rng, 9)));
        // Large enough for the OpenBLAS path of the shape-routed GEMM (m > 8).
        Check((t, x) => t.MatMul(x[0], x[1], transB: true), 4, (new[] { 33, 40 }, Rand(rng, 1320, 0.3f)), (new[] { 17, 40 }, Rand(rng, 680, 0.3f)));
    }

    [Fact]
    public void Elementwise_ops_and_activations()
    {
        var rng = new Random(2);
        Check((t, x) => t.Add(x[0], x[1]), 1, (new[] { 4, 5 }, Rand(rng, 20)), (new[] { 4, 5 }, Rand(rng, 20)));
        Check((t, x) => t.Mul(x[0], x[1]), 2, (new[] { 4, 5 }, Rand(rng, 20)), (new[] { 4, 5 }, Rand(rng, 20)));
        Check((t, x) => t.Scale(x[0], -1.7f), 3, (new[] { 2, 3 }, Rand(rng, 6)));
        Check((t, x) => t.Sigmoid(x[0]), 4, (new[] { 30 }, Rand(rng, 30, 3f)));
        Check((t, x) => t.Tanh(x[0]), 5, (new[] { 30 }, Rand(rng, 30, 2f)));
        Check((t, x) => t.Silu(x[0]), 6, (new[] { 30 }, Rand(rng, 30, 3f)));
        Check((t, x) => t.Gelu(x[0]), 7, (new[] { 30 }, Rand(rng, 30, 3f)));
        Check((t, x) => t.Relu(x[0]), 8, (new[] { 30 }, Rand(rng, 30, 1f, awayFromZero: 0.05f)));
        Check((t, x) => t.AddBias(x[0], x[1]), 9, (new[] { 3, 4 }, Rand(rng, 12)), (new[] { 4 }, Rand(rng, 4)));
    }

    [Fact]
    public void Shape_ops_gather_and_the_LoPA_composition()
    {
        var rng = new Random(3);
        Check((t, x) => t.Reshape(t.Tanh(x[0]), 6, 2), 1, (new[] { 3, 4 }, Rand(rng, 12)));
        Check((t, x) => t.SliceRows(x[0], 1, 2), 2, (new[] { 4, 3 }, Rand(rng, 12)));
        Check((t, x) => t.ConcatRows(x[0], x[1], x[0]), 3, (new[] { 2, 3 }, Rand(rng, 6)), (new[] { 1, 3 }, Rand(rng, 3)));
        Check((t, x) => t.Gather(x[0], new[] { 3, 0, 3, 2 }), 4, (new[] { 5, 3 }, Rand(rng, 15)));
        // Z = Z_S ∘ sigmoid(u · vᵀ), the LoPA soft prompt: m = 4 rows, d = 6, rank 2.
        Check((t, x) => t.Mul(x[0], t.Sigmoid(t.MatMul(x[1], x[2], transB: true))), 5,
            (new[] { 4, 6 }, Rand(rng, 24)), (new[] { 4, 2 }, Rand(rng, 8)), (new[] { 6, 2 }, Rand(rng, 12)));
    }

    [Fact]
    public void RmsNorm_to_input_and_weight()
    {
        var rng = new Random(4);
        Check((t, x) => t.RmsNorm(x[0], x[1], 1e-5f), 1, (new[] { 3, 8 }, Rand(rng, 24)), (new[] { 8 }, Rand(rng, 8)));
    }

    [Theory]
    [InlineData(RotaryLayout.Interleaved)]
    [InlineData(RotaryLayout.HalfSplit)]
    public void Rotary_both_layouts(RotaryLayout layout)
    {
        var rng = new Random(5);
        Check((t, x) => t.Rotary(x[0], 2, 4, new[] { 0, 1, 5 }, 10000f, layout), 1, (new[] { 3, 8 }, Rand(rng, 24)));
    }

    [Theory]
    [InlineData(3, 2, 2, true, false)]   // single-query-size path, GQA 2:1... dot-product forward
    [InlineData(6, 4, 2, true, false)]   // GEMM forward path (tq ≥ 4), causal
    [InlineData(5, 2, 1, false, true)]   // MQA, padding masks per batch row
    public void Attention_to_q_k_and_v(int tokens, int qHeads, int kvHeads, bool causal, bool padded)
    {
        var rng = new Random(6);
        const int Batch = 2, HeadDim = 4;
        var shape = new Attention.Shape(Batch, tokens, tokens, qHeads, kvHeads, HeadDim);
        int[]? lengths = padded ? new[] { tokens, tokens - 2 } : null;
        Check((t, x) => t.Attention(x[0], x[1], x[2], shape, 0.5f, causal, lengths), 1,
            (new[] { Batch * tokens, qHeads * HeadDim }, Rand(rng, Batch * tokens * qHeads * HeadDim)),
            (new[] { Batch * tokens, kvHeads * HeadDim }, Rand(rng, Batch * tokens * kvHeads * HeadDim)),
            (new[] { Batch * tokens, kvHeads * HeadDim }, Rand(rng, Batch * tokens * kvHeads * HeadDim)));
    }

    [Fact]
    public void CrossEntropy_counts_target_rows_only()
    {
        var rng = new Random(7);
        int[] targets = { -1, 3, 0, -1, 4 };
        Check((t, x) => t.CrossEntropy(x[0], targets), 1, (new[] { 5, 6 }, Rand(rng, 30, 2f)));

        var tape = new Tape();
        var logits = tape.Parameter(Rand(rng, 30, 2f), 5, 6);
        var loss = tape.CrossEntropy(logits, targets);
        tape.Backward(loss);
        // Ignored rows get exactly zero gradient; the value is the mean over the three counted rows.
        Assert.All(new[] { 0, 3 }, r => Assert.All(logits.Grad!.AsSpan(r * 6, 6).ToArray(), g => Assert.Equal(0f, g)));
        double expected = new[] { 1, 2, 4 }.Average(r =>
        {
            var row = logits.Value.AsSpan(r * 6, 6).ToArray();
            return Math.Log(row.Sum(v => Math.Exp(v))) - row[targets[r]];
        });
        Assert.Equal(expected, loss.Value[0], 5);
    }

    [Fact]
    public void A_decoder_block_end_to_end_gradient_to_its_input_embeddings_only()
    {
        // Embedding input rows → RMSNorm → q/k/v → RoPE → causal attention → residual → SwiGLU MLP → logits → loss,
        // with every weight frozen: only the input rows (the soft prompt's position) get a gradient.
        var rng = new Random(8);
        const int T = 5, D = 8, H = 2, Hd = 4, F = 12, V = 7;
        float[] wq = Rand(rng, D * D, 0.5f), wk = Rand(rng, D * D, 0.5f), wv = Rand(rng, D * D, 0.5f), wo = Rand(rng, D * D, 0.5f);
        float[] w1 = Rand(rng, F * D, 0.5f), w2 = Rand(rng, D * F, 0.5f), w3 = Rand(rng, F * D, 0.5f), head = Rand(rng, V * D, 0.5f);
        float[] norm = Rand(rng, D, 0.2f).Select(x => x + 1f).ToArray();
        int[] positions = Enumerable.Range(0, T).ToArray(), targets = { -1, -1, 2, 5, 1 };
        Op block = (t, x) =>
        {
            Variable W(float[] w, int r, int c) => t.Constant(w, r, c);
            Variable h = t.RmsNorm(x[0], t.Constant(norm, D), 1e-5f);
            Variable q = t.Rotary(t.Linear(h, W(wq, D, D)), H, Hd, positions, 10000f, RotaryLayout.Interleaved);
            Variable k = t.Rotary(t.Linear(h, W(wk, D, D)), H, Hd, positions, 10000f, RotaryLayout.Interleaved);
            Variable a = t.Attention(q, k, t.Linear(h, W(wv, D, D)), new Attention.Shape(1, T, T, H, H, Hd), 0.5f, causal: true);
            Variable r = t.Add(x[0], t.Linear(a, W(wo, D, D)));
            Variable m = t.RmsNorm(r, t.Constant(norm, D), 1e-5f);
            Variable ff = t.Linear(t.Mul(t.Silu(t.Linear(m, W(w1, F, D))), t.Linear(m, W(w3, F, D))), W(w2, D, F));
            return t.CrossEntropy(t.Linear(t.Add(r, ff), W(head, V, D)), targets);
        };
        Check(block, 1, (new[] { T, D }, Rand(rng, T * D)));
    }

    [Fact]
    public void Constants_get_no_gradient_and_a_tape_runs_backward_once()
    {
        var tape = new Tape();
        var x = tape.Parameter(new float[] { 1, 2 }, 2);
        var frozen = tape.Constant(new float[] { 3, 4 }, 2);
        var loss = tape.Sum(tape.Mul(x, frozen));
        tape.Backward(loss);
        Assert.Equal(new float[] { 3, 4 }, x.Grad);
        Assert.Null(frozen.Grad);
        Assert.Throws<InvalidOperationException>(() => tape.Backward(loss));
        var other = new Tape();
        Assert.Throws<ArgumentException>(() => other.Backward(other.Parameter(new float[2], 2)));
        Assert.Throws<ArgumentException>(() => other.MatMul(other.Parameter(new float[6], 2, 3), other.Parameter(new float[8], 4, 2)));
    }
}
