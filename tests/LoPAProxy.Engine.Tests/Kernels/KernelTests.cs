using LoPAProxy.Engine.Kernels;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Engine.Tests.Kernels;

/// <summary>Each kernel against a plain reference loop (double precision) on random shapes, odd sizes and size 1
/// included.</summary>
public class KernelTests
{
    private static readonly int[] Sizes = { 1, 2, 3, 5, 16, 17, 63, 64, 100 };

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
        {
            foreach (int outF in new[] { 1, 3, 33 })
            {
                int rows = 1 + rng.Next(5);
                float[] x = Rand.Floats(rng, rows * inF), w = Rand.Floats(rng, outF * inF), bias = Rand.Floats(rng,
                    outF), y = new float[rows * outF];
                Linear.Forward(x, rows, inF, w, outF, bias, y);
                for (int r = 0; r < rows; r++)
                {
                    for (int o = 0; o < outF; o++)
                    {
                        double s = bias[o];
                        for (int i = 0; i < inF; i++) s += (double)x[r * inF + i] * w[o * inF + i];
                        Assert.Equal(s, y[r * outF + o], 4);
                    }
                }
            }
        }
    }

}
