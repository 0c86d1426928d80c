using LoPAProxy.Engine.Networks.Llama;

namespace LoPAProxy.Engine.Tests.Networks;

public class SamplerTests
{
    private static float[] Logits() => new[] { 2.0f, 1.0f, 0.5f, -1f, 3.0f, 0f };

    [Fact]
    public void Greedy_takes_the_first_maximum()
    {
        Assert.Equal(4, new Sampler(6).Sample(Logits()));
        Assert.Equal(1, new Sampler(3).Sample(new[] { 0f, 5f, 5f }));
    }

    [Fact]
    public void Same_seed_same_draws_and_frequencies_follow_the_softmax()
    {
        var a = new Sampler(6, temperature: 1f, seed: 123);
        var b = new Sampler(6, temperature: 1f, seed: 123);
        var counts = new int[6];
        for (int i = 0; i < 20000; i++)
        {
            int x = a.Sample(Logits());
            Assert.Equal(x, b.Sample(Logits()));
            counts[x]++;
        }
        double[] p = Logits().Select(v => Math.Exp(v)).ToArray();
        double z = p.Sum();
        for (int i = 0; i < 6; i++) Assert.InRange(counts[i] / 20000.0, p[i] / z - 0.015, p[i] / z + 0.015);
    }

    [Fact]
    public void Top_k_and_top_p_never_pick_outside_the_nucleus()
    {
        var topK = new Sampler(6, temperature: 1f, topK: 2, seed: 5);
        var topP = new Sampler(6, temperature: 1f, topP: 0.5f, seed: 5);
        var seenK = new HashSet<int>();
        var seenP = new HashSet<int>();
        for (int i = 0; i < 5000; i++) { seenK.Add(topK.Sample(Logits())); seenP.Add(topP.Sample(Logits())); }
        Assert.Equal(new HashSet<int> { 4, 0 }, seenK);       // the two most likely
        Assert.Equal(new HashSet<int> { 4 }, seenP);          // p(4) = 0.59 > 0.5 alone
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(6, temperature: -1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(6, topP: 0f));
    }

    [Fact]
    public void The_generator_is_run_cs_xorshift()
    {
        // run.c: state ^= state >> 12; state ^= state << 25; state ^= state >> 27; (state * 0x2545F4914F6CDD1D) >> 32.
        ulong s = 42;
        uint Next() { s ^= s >> 12; s ^= s << 25; s ^= s >> 27; return (uint)((s * 0x2545F4914F6CDD1DUL) >> 32); }
        var sampler = new Sampler(2, temperature: 1f, seed: 42);
        // With logits (0, 0) the draw is token 0 iff coin < 0.5.
        for (int i = 0; i < 200; i++)
        {
            float coin = (Next() >> 8) / 16777216.0f;
            Assert.Equal(coin < 0.5f ? 0 : 1, sampler.Sample(new[] { 0f, 0f }));
        }
    }
}
