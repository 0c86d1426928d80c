namespace LoPAProxy.Training;

/// <summary>Learning-rate multiplier per optimiser step (0-based), as Hugging Face's schedules define them.</summary>
public abstract record LearningRateSchedule
{
    public abstract double Factor(long step);

    /// <summary>get_constant_schedule: 1 always.</summary>
    public sealed record Constant : LearningRateSchedule
    {
        public override double Factor(long step) => 1;
    }

    /// <summary>get_constant_schedule_with_warmup: step / warmup for step &lt; warmup (so step 0 moves nothing),
    /// then 1.</summary>
    public sealed record ConstantWithWarmup(long WarmupSteps) : LearningRateSchedule
    {
        public override double Factor(long step) => step < WarmupSteps ? (double)step / Math.Max(1, WarmupSteps) : 1;
    }
}
