namespace LoPAProxy.Engine.Autograd;

/// <summary>
/// A value on a <see cref="Tape"/>: a contiguous float buffer with a shape, and — when it needs one — a gradient of
/// the same size. Leaves are made with <see cref="Tape.Parameter"/> (trainable: gets a gradient) or
/// <see cref="Tape.Constant"/> (frozen: never does, and nothing is computed for it).
/// </summary>
public sealed class Variable
{
    internal Variable(float[] value, int[] shape, bool requiresGrad)
    {
        int count = 1;
        foreach (int n in shape) count *= n;
        if (count != value.Length) throw new ArgumentException($"shape [{string.Join(", ", shape)}] holds {count} values, buffer has {value.Length}");
        Value = value;
        Shape = shape;
        RequiresGrad = requiresGrad;
    }

    public float[] Value { get; }
    public int[] Shape { get; }
    public int Count => Value.Length;
    public bool RequiresGrad { get; }

    /// <summary>∂loss/∂this after <see cref="Tape.Backward"/>; null for constants and values the loss does not reach.</summary>
    public float[]? Grad { get; internal set; }

    /// <summary>The last dimension (the row length of a [rows, cols] view).</summary>
    public int Cols => Shape.Length == 0 ? 1 : Shape[^1];
    public int Rows => Count / Math.Max(1, Cols);

    internal float[] GradBuffer() => Grad ??= new float[Value.Length];

    public override string ToString() => $"Variable[{string.Join(", ", Shape)}]{(RequiresGrad ? " (grad)" : "")}";
}
