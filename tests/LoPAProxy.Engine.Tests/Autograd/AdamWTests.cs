using System.Globalization;
using LoPAProxy.Engine.Autograd;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Engine.Tests.Autograd;

/// <summary>AdamW, the warmup schedule and gradient clipping against torch.optim.AdamW + LambdaLR + clip_grad_norm_.</summary>
public class AdamWTests
{
    [Theory]
    [InlineData(0.0, 1000.0)]   // constant schedule, clipping inactive
    [InlineData(3.0, 0.5)]      // 3 warmup steps (step 0 moves only by weight decay × 0), clipping active
    public void Seven_steps_match_PyTorch(double warmup, double maxNorm)
    {
        var rng = new Random(1);
        float[] a = Rand.Floats(rng, 5), b = Rand.Floats(rng, 3);
        float[][] grads = Enumerable.Range(0, 7).Select(_ => Rand.Floats(rng, 8, 2f)).ToArray();
        string F(IEnumerable<float> xs) => string.Join(",", xs.Select(x => x.ToString("R", CultureInfo.InvariantCulture)));

        string output = PyTorch.Run("""
            import sys, torch
            a = torch.nn.Parameter(torch.tensor([float(x) for x in sys.argv[1].split(",")]))
            b = torch.nn.Parameter(torch.tensor([float(x) for x in sys.argv[2].split(",")]))
            warmup, max_norm = int(float(sys.argv[3])), float(sys.argv[4])
            opt = torch.optim.AdamW([a, b], lr=0.05, weight_decay=0.1)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: s / max(1, warmup) if s < warmup else 1.0)
            for g in sys.argv[5:]:
                g = [float(x) for x in g.split(",")]
                a.grad = torch.tensor(g[:5]); b.grad = torch.tensor(g[5:])
                torch.nn.utils.clip_grad_norm_([a, b], max_norm)
                opt.step(); sched.step()
            print(",".join(repr(float(x)) for x in torch.cat([a.detach(), b.detach()])))
            """, new[] { F(a), F(b), warmup.ToString(CultureInfo.InvariantCulture), maxNorm.ToString(CultureInfo.InvariantCulture) }.Concat(grads.Select(F)).ToArray());
        float[] expected = output.Trim().Split(',').Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray();

        var optimiser = new AdamW(new[] { a, b }, 0.05)
        {
            WeightDecay = 0.1,
            Schedule = warmup > 0 ? new LearningRateSchedule.ConstantWithWarmup((long)warmup) : new LearningRateSchedule.Constant(),
        };
        foreach (float[] g in grads)
        {
            float[]?[] gs = { g[..5], g[5..] };
            AdamW.ClipGradientNorm(gs, maxNorm);
            optimiser.Update(gs);
        }
        Rand.AssertClose(expected, a.Concat(b).ToArray(), 2e-6f);
        Assert.Equal(7, optimiser.Step);
    }

    [Fact]
    public void Saved_state_resumes_to_the_same_parameters()
    {
        var rng = new Random(2);
        float[] p1 = Rand.Floats(rng, 6), p2 = (float[])p1.Clone();
        float[][] grads = Enumerable.Range(0, 6).Select(_ => Rand.Floats(rng, 6)).ToArray();
        var straight = new AdamW(new[] { p1 }, 0.01);
        foreach (var g in grads) straight.Update(new[] { g });

        var first = new AdamW(new[] { p2 }, 0.01);
        foreach (var g in grads.Take(3)) first.Update(new[] { g });
        var (step, m, v) = first.SaveState();
        var resumed = new AdamW(new[] { p2 }, 0.01);
        resumed.LoadState(step, m, v);
        foreach (var g in grads.Skip(3)) resumed.Update(new[] { g });
        Assert.Equal(p1, p2);
        Assert.Throws<ArgumentException>(() => resumed.LoadState(1, new[] { new float[2] }, new[] { new float[2] }));
    }
}
