using LoPAProxy.Core.Adapters;

namespace LoPAProxy.Training;

/// <summary>What is trained: one of the four soft-prompt compositions (a proxy adapter) or the server-side LoRA baseline.</summary>
public enum TrainingMethod { PromptTuning, Idpg, LopaAdd, Lopa, Lora }

public static class TrainingMethods
{
    public static TrainingMethod Parse(string name) => name switch
    {
        "prompt_tuning" => TrainingMethod.PromptTuning,
        "idpg" => TrainingMethod.Idpg,
        "lopa_add" => TrainingMethod.LopaAdd,
        "lopa" => TrainingMethod.Lopa,
        "lora" => TrainingMethod.Lora,
        _ => throw new ArgumentException($"unknown method '{name}' (prompt_tuning, idpg, lopa_add, lopa, lora)"),
    };

    public static string Name(TrainingMethod m) => m switch
    {
        TrainingMethod.PromptTuning => "prompt_tuning",
        TrainingMethod.Idpg => "idpg",
        TrainingMethod.LopaAdd => "lopa_add",
        TrainingMethod.Lopa => "lopa",
        _ => "lora",
    };

    /// <summary>The method that trains adapters of <paramref name="c"/>.</summary>
    public static TrainingMethod Of(Composition c) => c switch
    {
        Core.Adapters.Composition.PromptTuning => TrainingMethod.PromptTuning,
        Core.Adapters.Composition.Idpg => TrainingMethod.Idpg,
        Core.Adapters.Composition.LopaAdd => TrainingMethod.LopaAdd,
        _ => TrainingMethod.Lopa,
    };

    public static Composition? Composition(TrainingMethod m) => m switch
    {
        TrainingMethod.PromptTuning => Core.Adapters.Composition.PromptTuning,
        TrainingMethod.Idpg => Core.Adapters.Composition.Idpg,
        TrainingMethod.LopaAdd => Core.Adapters.Composition.LopaAdd,
        TrainingMethod.Lopa => Core.Adapters.Composition.Lopa,
        _ => null,
    };
}

/// <summary>
/// Where the soft prompt sits in the sequence, as the proxy's dialect will send it: completions (vllm-completions,
/// sglang: [Z ; BOS prompt]), chat (vllm-chat: the chat template's BOS, then the prompt_embeds part before the text:
/// [BOS ; Z ; prompt]), or both (each example one or the other, alternating deterministically), for an adapter
/// served on both routes.
/// </summary>
public enum PromptLayout { Completions, Chat, Both }

/// <summary>What the instance encoder reads: the task's input (the sentence, as the paper does) or the whole prompt
/// (what the proxy reads from a request: a completion's prompt, a chat's last user message).</summary>
public enum InstanceSource { Input, Prompt }

/// <summary>Hyper-parameters of a training run (defaults: the paper's GLUE settings, DESIGN.md §2).</summary>
public sealed record TrainingOptions
{
    public TrainingMethod Method { get; init; } = TrainingMethod.Lopa;
    /// <summary>m, soft-prompt rows.</summary>
    public int VirtualTokens { get; init; } = 10;
    /// <summary>r, the rank of u·vᵀ (and of LoRA).</summary>
    public int Rank { get; init; } = 4;
    /// <summary>H, the heads' hidden size.</summary>
    public int HiddenSize { get; init; } = 256;
    public int Epochs { get; init; } = 1;
    public int BatchSize { get; init; } = 8;
    public double LearningRate { get; init; } = 1e-3;
    public double WeightDecay { get; init; } = 0.01;
    public PromptLayout Layout { get; init; } = PromptLayout.Completions;
    public InstanceSource Instance { get; init; } = InstanceSource.Input;
    /// <summary>Fraction of steps warming up linearly (0 = constant schedule). GLUE: 0.06.</summary>
    public double WarmupRatio { get; init; } = 0.06;
    public double MaxGradNorm { get; init; } = 1.0;
    public int Seed { get; init; }
    /// <summary>LoRA's α (scale α/r); PEFT's default is 8.</summary>
    public float LoraAlpha { get; init; } = 8f;
    /// <summary>The attention projections LoRA updates (PEFT's default for Llama: q and v).</summary>
    public IReadOnlyList<string> LoraTargets { get; init; } = new[] { "q", "v" };
    /// <summary>Recorded in the adapter's config (base_model_name_or_path).</summary>
    public string? BaseModel { get; init; }
    /// <summary>libtorch's intra-op threads; 0 = its default (one per core).</summary>
    public int Threads { get; init; }
    /// <summary>Stop after this many optimiser steps (for smoke runs); 0 = all epochs.</summary>
    public long MaxSteps { get; init; }
}

/// <summary>One optimiser step's report.</summary>
public sealed record TrainingProgress(long Step, long TotalSteps, int Epoch, double Loss, double ExamplesPerSecond, TimeSpan Elapsed, TimeSpan Remaining);
