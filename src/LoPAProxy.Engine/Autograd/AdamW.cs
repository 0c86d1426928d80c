namespace LoPAProxy.Engine.Autograd;

/// <summary>Learning-rate multiplier per optimiser step (0-based), as Hugging Face's schedules define them.</summary>
public abstract record LearningRateSchedule
{
    public abstract double Factor(long step);

    /// <summary>get_constant_schedule: 1 always.</summary>
    public sealed record Constant : LearningRateSchedule { public override double Factor(long step) => 1; }

    /// <summary>get_constant_schedule_with_warmup: step / warmup for step &lt; warmup (so step 0 moves nothing), then 1.</summary>
    public sealed record ConstantWithWarmup(long WarmupSteps) : LearningRateSchedule
    {
        public override double Factor(long step) => step < WarmupSteps ? (double)step / Math.Max(1, WarmupSteps) : 1;
    }
}

/// <summary>
/// torch.optim.AdamW over float buffers updated in place: decoupled weight decay p −= lr·wd·p, then Adam with bias
/// correction, p −= lr · m̂ / (√v̂ + eps). Moments are kept per parameter buffer; the state can be saved and restored
/// for resumable training.
/// </summary>
public sealed class AdamW
{
    public double LearningRate { get; }
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Epsilon { get; init; } = 1e-8;
    public double WeightDecay { get; init; } = 0.01;
    public LearningRateSchedule Schedule { get; init; } = new LearningRateSchedule.Constant();

    private readonly float[][] _parameters;
    private readonly float[][] _m, _v;

    /// <summary>Optimiser steps taken so far.</summary>
    public long Step { get; private set; }

    public AdamW(IReadOnlyList<float[]> parameters, double learningRate)
    {
        _parameters = parameters.ToArray();
        _m = _parameters.Select(p => new float[p.Length]).ToArray();
        _v = _parameters.Select(p => new float[p.Length]).ToArray();
        LearningRate = learningRate;
    }

    /// <summary>The learning rate the next step will use.</summary>
    public double CurrentLearningRate => LearningRate * Schedule.Factor(Step);

    /// <summary>One update from gradients[i] (same order and sizes as the parameters; null = no gradient this step).</summary>
    public void Update(IReadOnlyList<float[]?> gradients)
    {
        if (gradients.Count != _parameters.Length) throw new ArgumentException($"{gradients.Count} gradients for {_parameters.Length} parameters");
        double lr = CurrentLearningRate;
        Step++;
        double correction1 = 1 - Math.Pow(Beta1, Step), correction2 = 1 - Math.Pow(Beta2, Step);
        double stepSize = lr / correction1, sqrtCorrection2 = Math.Sqrt(correction2);
        float b1 = (float)Beta1, b2 = (float)Beta2, decay = (float)(1 - lr * WeightDecay);
        for (int i = 0; i < _parameters.Length; i++)
        {
            float[]? g = gradients[i];
            if (g is null) continue;
            float[] p = _parameters[i], m = _m[i], v = _v[i];
            if (g.Length != p.Length) throw new ArgumentException($"gradient {i} has {g.Length} values, its parameter {p.Length}");
            for (int j = 0; j < p.Length; j++)
            {
                p[j] *= decay;
                m[j] = b1 * m[j] + (1 - b1) * g[j];
                v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j];
                p[j] -= (float)(stepSize * m[j] / (Math.Sqrt(v[j]) / sqrtCorrection2 + Epsilon));
            }
        }
    }

    /// <summary>torch.nn.utils.clip_grad_norm_: scales every gradient by min(1, max / (‖g‖₂ + 1e-6)); returns the norm before clipping.</summary>
    public static double ClipGradientNorm(IReadOnlyList<float[]?> gradients, double maxNorm)
    {
        double sum = 0;
        foreach (var g in gradients)
            if (g != null) foreach (float x in g) sum += (double)x * x;
        double norm = Math.Sqrt(sum);
        double coefficient = maxNorm / (norm + 1e-6);
        if (coefficient < 1)
            foreach (var g in gradients)
                if (g != null) System.Numerics.Tensors.TensorPrimitives.Multiply(g, (float)coefficient, g);
        return norm;
    }

    /// <summary>Step count and both moments, for checkpoints.</summary>
    public (long Step, float[][] M, float[][] V) SaveState() => (Step, _m.Select(a => (float[])a.Clone()).ToArray(), _v.Select(a => (float[])a.Clone()).ToArray());

    public void LoadState(long step, float[][] m, float[][] v)
    {
        if (m.Length != _m.Length || v.Length != _v.Length || m.Where((a, i) => a.Length != _m[i].Length || v[i].Length != _v[i].Length).Any())
            throw new ArgumentException("optimiser state does not match the parameters");
        Step = step;
        for (int i = 0; i < m.Length; i++) { m[i].CopyTo(_m[i], 0); v[i].CopyTo(_v[i], 0); }
    }
}
