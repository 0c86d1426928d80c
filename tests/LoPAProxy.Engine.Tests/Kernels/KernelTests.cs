using System.Globalization;
using LoPAProxy.Engine.Kernels;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Engine.Tests.Kernels;

/// <summary>Each kernel against a plain reference loop (double precision) on random shapes, odd sizes and size 1
/// included.</summary>
public class KernelTests
{
    private static readonly int[] Sizes = { 1, 2, 3, 5, 16, 17, 63, 64, 100 };

    [Fact]
    public void Broadcasting_binary_ops_match_index_arithmetic()
    {
        var rng = new Random(1);
        var cases = new (int[] A, int[] B)[] { (new[] { 3, 4 }, new[] { 3, 4 }), (new[] { 2, 3, 5 }, new[] { 5 }),
            (new[] { 2, 1, 5 }, new[] { 3, 1 }),
            (new[] { 1 }, new[] { 4, 1, 2 }), (new[] { 4, 1 }, new[] { 1, 7 }), (new[] { 1, 1 }, new[] { 1, 1 }) };
        foreach (var (sa, sb) in cases)
        foreach (BinaryOp op in Enum.GetValues<BinaryOp>())
        {
            Tensor a = Tensor.FromArray(Rand.Floats(rng, ShapeMath.Count(sa)),
                sa), b = Tensor.FromArray(Rand.Floats(rng, ShapeMath.Count(sb)).Select(x => x + 2f).ToArray(), sb);
            Tensor r = Elementwise.Binary(a, b, op);
            int[] shape = Elementwise.BroadcastShape(sa, sb);
            Assert.Equal(shape, r.Shape.ToArray());
            var idx = new int[shape.Length];
            for (int n = 0; n < r.Count; n++)
            {
                int rem = n;
                for (int d = shape.Length - 1; d >= 0; d--) { idx[d] = rem % shape[d]; rem /= shape[d]; }
                float x = a[Project(idx, sa)], y = b[Project(idx, sb)];
                float expected = op switch { BinaryOp.Add => x + y, BinaryOp.Subtract => x - y, BinaryOp.Multiply =>
                    x * y, _ => x / y };
                Assert.Equal(expected, r.Span[n], 6);
            }
        }
        // Strided (transposed) operands take the general path.
        Tensor m = Tensor.FromArray(Rand.Floats(rng, 12), 3, 4);
        Assert.Equal(Elementwise.Add(m.Transpose(0, 1).Contiguous(), m.Transpose(0, 1).Contiguous()).ToArray(),
            Elementwise.Add(m.Transpose(0, 1), m.Transpose(0, 1)).ToArray());
        Assert.Throws<ArgumentException>(() => Elementwise.Add(Tensor.Zeros(2, 3), Tensor.Zeros(4)));
    }

    private static int[] Project(int[] idx, int[] shape)
    {
        var r = new int[shape.Length];
        int lead = idx.Length - shape.Length;
        for (int i = 0; i < shape.Length; i++) r[i] = shape[i] == 1 ? 0 : idx[lead + i];
        return r;
    }

    [Fact]
    public void Scale_multiplies_every_element()
    {
        Tensor t = Tensor.FromArray(new float[] { 1, -2, 3 }, 3);
        Assert.Equal(new float[] { 2.5f, -5f, 7.5f }, Elementwise.Scale(t, 2.5f).ToArray());
    }

    [Fact]
    public void Activations_match_pytorch()
    {
        var rng = new Random(5);
        float[] x = Rand.Floats(rng, 4001, 8f);
        x[0] = 0; x[1] = -30; x[2] = 30; x[3] = 1e-6f;
        string dir = TempDir.Create(), input = Path.Combine(dir, "x.bin");
        File.WriteAllBytes(input, x.SelectMany(BitConverter.GetBytes).ToArray());
        string[] lines = PyTorch.Run("""
            import sys, torch
            import torch.nn.functional as F
            x = torch.frombuffer(bytearray(open(sys.argv[1], 'rb').read()), dtype=torch.float32)
            for y in (torch.sigmoid(x), torch.tanh(x), F.gelu(x), F.gelu(x, approximate='tanh'), F.silu(x), torch.relu(x)):
                print(' '.join(repr(v) for v in y.tolist()))
            """, input).Trim().Split('\n');
        float[] Parse(int i) => lines[i].Split(' ').Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var y = new float[x.Length];
        Activations.Sigmoid(x, y); Rand.AssertClose(Parse(0), y, 1e-6f, "sigmoid");
        Activations.Tanh(x, y); Rand.AssertClose(Parse(1), y, 1e-6f, "tanh");
        Activations.Gelu(x, y, GeluForm.Erf); Rand.AssertClose(Parse(2), y, 1e-6f, "gelu");
        Activations.Gelu(x, y, GeluForm.Tanh); Rand.AssertClose(Parse(3), y, 1e-6f, "gelu-tanh");
        Activations.Silu(x, y); Rand.AssertClose(Parse(4), y, 1e-6f, "silu");
        Activations.Relu(x, y); Rand.AssertClose(Parse(5), y, 0f, "relu");
        // In place works too.
        var z = (float[])x.Clone();
        Activations.Silu(z, z); Rand.AssertClose(Parse(4), z, 1e-6f, "silu in place");
    }

    [Fact]
    public void Softmax_with_causal_and_padding_masks()
    {
        var rng = new Random(2);
        foreach (int n in Sizes)
        foreach (int valid in new[] { 0, 1, n / 2, n })
        {
            float[] row = Rand.Floats(rng, n, 50f), orig = (float[])row.Clone();
            Softmax.Row(row, valid);
            double max = valid > 0 ? orig.Take(valid).Max() : 0, sum = orig.Take(valid).Sum(v => Math.Exp(v - max));
            for (int i = 0; i < n; i++) Assert.Equal(i < valid ? Math.Exp(orig[i] - max) / sum : 0, row[i], 5);
        }
        float[] scores = Rand.Floats(rng, 3 * 5);
        float[] copy = (float[])scores.Clone();
        Softmax.CausalRows(scores, 3, 5, offset: 2);
        for (int r = 0; r < 3; r++)
        {
            float[] expected = copy.Skip(r * 5).Take(5).ToArray();
            Softmax.Row(expected, r + 3);
            Assert.Equal(expected, scores.Skip(r * 5).Take(5).ToArray());
        }
        float[] big = { 1000f, 1000f };
        Softmax.Row(big);
        Assert.Equal(new[] { 0.5f, 0.5f }, big);
    }

    [Fact]
    public void RmsNorm_matches_a_reference_loop()
    {
        var rng = new Random(3);
        foreach (int dim in Sizes)
        {
            int rows = 1 + rng.Next(4);
            float[] x = Rand.Floats(rng, rows * dim, 3f), g = Rand.Floats(rng, dim), y = new float[x.Length];
            Norms.RmsNorm(x, g, y, dim, 1e-5f);
            for (int r = 0; r < rows; r++)
            {
                var row = x.Skip(r * dim).Take(dim).Select(v => (double)v).ToArray();
                double rms = Math.Sqrt(row.Select(v => v * v).Average() + 1e-5);
                for (int i = 0; i < dim; i++) Assert.Equal(row[i] / rms * g[i], y[r * dim + i], 4);
            }
        }
        Assert.Throws<ArgumentException>(() => Norms.RmsNorm(new float[5], new float[2], new float[5], 2, 1e-5f));
    }

    [Theory]
    [InlineData(RotaryLayout.Interleaved)]
    [InlineData(RotaryLayout.HalfSplit)]
    public void Rotary_rotates_the_right_pairs_by_position_angle(RotaryLayout layout)
    {
        var rng = new Random(4);
        int tokens = 3, heads = 2, headDim = 8;
        float[] x = Rand.Floats(rng, tokens * heads * headDim), y = (float[])x.Clone();
        int[] pos = { 0, 5, 17 };
        Rotary.Apply(y, tokens, heads, headDim, pos, 10000f, layout);
        for (int t = 0; t < tokens; t++)
        for (int h = 0; h < heads; h++)
        for (int i = 0; i < headDim / 2; i++)
        {
            int i0 = layout == RotaryLayout.Interleaved ? 2 * i : i, i1 = layout == RotaryLayout.Interleaved
                ? 2 * i + 1 : i + headDim / 2;
            double angle = pos[t] / Math.Pow(10000, 2.0 * i / headDim);
            int o = (t * heads + h) * headDim;
            Assert.Equal(x[o + i0] * Math.Cos(angle) - x[o + i1] * Math.Sin(angle), y[o + i0], 4);
            Assert.Equal(x[o + i0] * Math.Sin(angle) + x[o + i1] * Math.Cos(angle), y[o + i1], 4);
        }
        // Position 0 is the identity.
        Assert.Equal(x.Take(heads * headDim), y.Take(heads * headDim));
    }

    [Fact]
    public void Embedding_gathers_rows_and_rejects_out_of_range_ids()
    {
        float[] table = Enumerable.Range(0, 12).Select(i => (float)i).ToArray();
        var dst = new float[6];
        Embedding.Gather(table, 4, 3, new[] { 3, 0 }, dst);
        Assert.Equal(new float[] { 9, 10, 11, 0, 1, 2 }, dst);
        Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.Gather(table, 4, 3, new[] { 4 }, dst));
        Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.Gather(table, 4, 3, new[] { -1 }, dst));
    }

    [Fact]
    public void Linear_adds_bias_after_the_product()
    {
        var rng = new Random(8);
        foreach (int inF in Sizes.Take(6))
        foreach (int outF in new[] { 1, 3, 33 })
        {
            int rows = 1 + rng.Next(5);
            float[] x = Rand.Floats(rng, rows * inF), w = Rand.Floats(rng, outF * inF), bias = Rand.Floats(rng,
                outF), y = new float[rows * outF];
            Linear.Forward(x, rows, inF, w, outF, bias, y);
            for (int r = 0; r < rows; r++)
            for (int o = 0; o < outF; o++)
            {
                double s = bias[o];
                for (int i = 0; i < inF; i++) s += (double)x[r * inF + i] * w[o * inF + i];
                Assert.Equal(s, y[r * outF + o], 4);
            }
        }
    }

    [Theory]
    [InlineData(1, 1, 1, 1, 1, 4, false)]
    [InlineData(2, 3, 3, 4, 2, 8, true)]
    [InlineData(2, 1, 6, 8, 1, 16, true)]   // multi-query, one decode step
    [InlineData(3, 5, 5, 6, 3, 5, false)]   // odd head dim, padding masks (GEMM path)
    [InlineData(2, 6, 9, 4, 2, 8, true)]    // causal block with a cache offset, grouped heads (GEMM path)
    public void Attention_matches_a_reference_with_grouped_heads_and_masks(int batch, int tq, int tk, int hq, int hkv,
        int d, bool causal)
    {
        var rng = new Random(batch * 100 + tq * 10 + hq);
        float[] q = Rand.Floats(rng, batch * tq * hq * d), k = Rand.Floats(rng,
            batch * tk * hkv * d), v = Rand.Floats(rng, batch * tk * hkv * d);
        float[] o = new float[q.Length];
        int[] lengths = Enumerable.Range(0, batch).Select(b => Math.Max(1, tk - b)).ToArray();
        int offset = tk - tq;
        float scale = 1f / MathF.Sqrt(d);
        Attention.Forward(q, k, v, o, new Attention.Shape(batch, tq, tk, hq, hkv, d), scale, causal, offset, lengths);
        for (int b = 0; b < batch; b++)
        for (int t = 0; t < tq; t++)
        for (int h = 0; h < hq; h++)
        {
            int kvh = h / (hq / hkv), valid = Math.Min(lengths[b], causal ? offset + t + 1 : tk);
            var s = new double[valid];
            for (int j = 0; j < valid; j++)
            {
                for (int i = 0; i < d; i++) s[j] += (double)q[((b * tq + t) * hq + h) * d + i] * k[((b * tk + j) * hkv + kvh) * d + i];
                s[j] *= scale;
            }
            double max = s.Length > 0 ? s.Max() : 0, sum = s.Sum(x => Math.Exp(x - max));
            for (int i = 0; i < d; i++)
            {
                double acc = 0;
                for (int j = 0; j < valid; j++) acc += Math.Exp(s[j] - max) / sum * v[((b * tk + j) * hkv + kvh) * d + i];
                Assert.Equal(acc, o[((b * tq + t) * hq + h) * d + i], 4);
            }
        }
    }
}
