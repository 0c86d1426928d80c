using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoPAProxy.Training;

/// <summary>
/// torch.optim.AdamW with a Hugging Face learning-rate schedule applied per step, and its state (step, both moments)
/// readable and restorable for checkpoints.
/// </summary>
public sealed class TrainingOptimizer(AdamW optimizer, IReadOnlyList<Parameter> parameters, double learningRate,
    LearningRateSchedule schedule)
{
    /// <summary>Optimiser steps taken so far.</summary>
    public long StepCount { get; private set; }

    /// <summary>The learning rate the next step uses.</summary>
    public double CurrentLearningRate => learningRate * schedule.Factor(StepCount);

    public void ZeroGrad() => optimizer.zero_grad();

    public void Step()
    {
        foreach (ParamGroup group in optimizer.ParamGroups) group.LearningRate = CurrentLearningRate;
        optimizer.step();
        StepCount++;
    }

    /// <summary>Step count and Adam's first and second moments per parameter (CPU copies).</summary>
    public (long Step, float[][] M, float[][] V) SaveState()
    {
        var states = States();
        return (StepCount, states.Select(s => Trainable.Values(s.exp_avg)).ToArray(),
            states.Select(s => Trainable.Values(s.exp_avg_sq)).ToArray());
    }

    public void LoadState(long step, IReadOnlyList<float[]> m, IReadOnlyList<float[]> v)
    {
        var states = States();
        if (m.Count != states.Count || v.Count != states.Count)
            throw new ArgumentException($"optimiser state for {m.Count} parameters, this run has {states.Count}");
        using var noGrad = no_grad();
        for (int i = 0; i < states.Count; i++)
        {
            states[i].exp_avg.copy_(tensor(m[i], states[i].exp_avg.shape, ScalarType.Float32, states[i].exp_avg.device));
            states[i].exp_avg_sq.copy_(tensor(v[i], states[i].exp_avg_sq.shape, ScalarType.Float32,
                states[i].exp_avg_sq.device));
            states[i].step = step;
        }
        StepCount = step;
    }

    /// <summary>AdamW's per-parameter state, in parameter order (libtorch keeps one per parameter, made at
    /// construction).</summary>
    private List<AdamW.State> States()
    {
        List<AdamW.State> states = optimizer.state_dict().State.Cast<AdamW.State>().ToList();
        if (states.Count != parameters.Count)
        {
            throw new InvalidOperationException(
                $"AdamW holds state for {states.Count} of {parameters.Count} parameters");
        }

        return states;
    }
}
