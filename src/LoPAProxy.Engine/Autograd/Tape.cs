namespace LoPAProxy.Engine.Autograd;

/// <summary>
/// Reverse-mode automatic differentiation. Every op (partial class files beside this one, one per concept) computes
/// its forward value with the engine's kernels and, when any input needs a gradient, records a backward step.
/// <see cref="Backward"/> replays those steps in reverse, accumulating gradients. Inputs that are constants (a frozen
/// model's weights) get no gradient and cost nothing in the backward pass. A tape is single-use and not thread-safe.
/// </summary>
public sealed partial class Tape
{
    private readonly List<Action> _backward = new();
    private bool _done;

    /// <summary>A trainable leaf over <paramref name="value"/> (not copied): its gradient lands in Grad.</summary>
    public Variable Parameter(float[] value, params int[] shape) => new(value, shape, requiresGrad: true);

    /// <summary>A frozen leaf over <paramref name="value"/> (not copied): no gradient is computed for it.</summary>
    public Variable Constant(float[] value, params int[] shape) => new(value, shape, requiresGrad: false);

    /// <summary>Seeds ∂loss/∂loss = 1 for a one-element loss and runs every recorded backward step in reverse.</summary>
    public void Backward(Variable loss)
    {
        if (loss.Count != 1) throw new ArgumentException($"backward starts from a single value; this one has shape [{string.Join(", ", loss.Shape)}]");
        if (_done) throw new InvalidOperationException("this tape has already run backward; record a new one per step");
        _done = true;
        if (!loss.RequiresGrad) return;
        loss.GradBuffer()[0] += 1f;
        for (int i = _backward.Count - 1; i >= 0; i--) _backward[i]();
        _backward.Clear();
    }

    /// <summary>The result variable; when any input needs a gradient, registers <paramref name="backward"/>, which runs only if the result got one.</summary>
    private Variable Record(float[] value, int[] shape, Variable[] inputs, Action<float[]> backward)
    {
        bool needs = false;
        foreach (var v in inputs) needs |= v.RequiresGrad;
        var result = new Variable(value, shape, needs);
        if (needs) _backward.Add(() => { if (result.Grad is { } g) backward(g); });
        return result;
    }

    private static void SameShape(Variable a, Variable b, string op)
    {
        if (!a.Shape.AsSpan().SequenceEqual(b.Shape))
            throw new ArgumentException($"{op}: shapes [{string.Join(", ", a.Shape)}] and [{string.Join(", ", b.Shape)}] differ");
    }
}
