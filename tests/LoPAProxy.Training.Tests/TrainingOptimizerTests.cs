using System.Globalization;
using LoPAProxy.Engine.Tests.Support;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoPAProxy.Training.Tests;

/// <summary>The trainer's optimiser — libtorch's AdamW with the Hugging Face warm-up schedule applied per step, and
/// clip_grad_norm_ — against torch.optim.AdamW + LambdaLR + clip_grad_norm_ in PyTorch.</summary>
public class TrainingOptimizerTests
{
    [Theory]
    [InlineData(0.0, 1000.0)]   // constant schedule, clipping inactive
    [InlineData(3.0, 0.5)]      // 3 warm-up steps (step 0 moves only by weight decay × 0), clipping active
    public void Seven_steps_match_PyTorch(double warmup, double maxNorm)
    {
        TorchRuntime.Configure();
        var rng = new Random(1);
        float[] a0 = Rand.Floats(rng, 5), b0 = Rand.Floats(rng, 3);
        float[][] grads = Enumerable.Range(0, 7).Select(_ => Rand.Floats(rng, 8, 2f)).ToArray();
        string F(IEnumerable<float> xs) =>
            string.Join(",", xs.Select(x => x.ToString("R", CultureInfo.InvariantCulture)));
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
            """, new[] { F(a0), F(b0), warmup.ToString(CultureInfo.InvariantCulture),
                maxNorm.ToString(CultureInfo.InvariantCulture) }.Concat(grads.Select(F)).ToArray());
        float[] expected = output.Trim().Split(',').Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray();

        Parameter a = Trainable.Parameter(a0, CPU, 5), b = Trainable.Parameter(b0, CPU, 3);
        Parameter[] parameters = { a, b };
        LearningRateSchedule schedule = warmup > 0
            ? new LearningRateSchedule.ConstantWithWarmup((long)warmup) : new LearningRateSchedule.Constant();
        var optimizer = new TrainingOptimizer(optim.AdamW(parameters, 0.05, 0.9, 0.999, 1e-8, 0.1), parameters, 0.05,
            schedule);
        foreach (float[] g in grads)
        {
            optimizer.ZeroGrad();
            // d/dp Σ p·g = g: the gradients PyTorch's side sets by hand.
            Tensor loss = (a * tensor(g[..5])).sum() + (b * tensor(g[5..])).sum();
            loss.backward();
            nn.utils.clip_grad_norm_(parameters, maxNorm);
            optimizer.Step();
        }
        Rand.AssertClose(expected, Trainable.Values(a).Concat(Trainable.Values(b)).ToArray(), 2e-6f);
        Assert.Equal(7, optimizer.StepCount);
    }
}
