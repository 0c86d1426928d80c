using System.Numerics.Tensors;
using LoPAProxy.Engine.Kernels;

namespace LoPAProxy.Engine.Autograd;

public sealed partial class Tape
{
    /// <summary>a + b, same shapes.</summary>
    public Variable Add(Variable a, Variable b)
    {
        SameShape(a, b, "add");
        var c = new float[a.Count];
        TensorPrimitives.Add(a.Value, b.Value, c);
        return Record(c, a.Shape, new[] { a, b }, dc =>
        {
            if (a.RequiresGrad) TensorPrimitives.Add(a.GradBuffer(), dc, a.GradBuffer());
            if (b.RequiresGrad) TensorPrimitives.Add(b.GradBuffer(), dc, b.GradBuffer());
        });
    }

    /// <summary>a ∘ b, same shapes.</summary>
    public Variable Mul(Variable a, Variable b)
    {
        SameShape(a, b, "mul");
        var c = new float[a.Count];
        TensorPrimitives.Multiply(a.Value, b.Value, c);
        return Record(c, a.Shape, new[] { a, b }, dc =>
        {
            if (a.RequiresGrad) TensorPrimitives.MultiplyAdd(dc, b.Value, a.GradBuffer(), a.GradBuffer());
            if (b.RequiresGrad) TensorPrimitives.MultiplyAdd(dc, a.Value, b.GradBuffer(), b.GradBuffer());
        });
    }

    /// <summary>x · s for a constant s.</summary>
    public Variable Scale(Variable x, float s)
    {
        var y = new float[x.Count];
        TensorPrimitives.Multiply(x.Value, s, y);
        return Record(y, x.Shape, new[] { x }, dy => TensorPrimitives.MultiplyAdd(dy, s, x.GradBuffer(), x.GradBuffer()));
    }

    /// <summary>x [rows, d] + bias [d] on every row. Backward: dbias += Σ_rows dy.</summary>
    public Variable AddBias(Variable x, Variable bias)
    {
        int d = x.Cols;
        if (bias.Count != d) throw new ArgumentException($"bias has {bias.Count} values, rows have {d}");
        var y = new float[x.Count];
        for (int r = 0; r < x.Rows; r++) TensorPrimitives.Add(x.Value.AsSpan(r * d, d), bias.Value, y.AsSpan(r * d, d));
        return Record(y, x.Shape, new[] { x, bias }, dy =>
        {
            if (x.RequiresGrad) TensorPrimitives.Add(x.GradBuffer(), dy, x.GradBuffer());
            if (bias.RequiresGrad)
                for (int r = 0; r < x.Rows; r++) TensorPrimitives.Add(bias.GradBuffer(), dy.AsSpan(r * d, d), bias.GradBuffer());
        });
    }

    /// <summary>Σ of every element, as a one-element value.</summary>
    public Variable Sum(Variable x) =>
        Record(new[] { TensorPrimitives.Sum(x.Value) }, new[] { 1 }, new[] { x }, dy => TensorPrimitives.Add(x.GradBuffer(), dy[0], x.GradBuffer()));

    public Variable Sigmoid(Variable x)
    {
        var y = new float[x.Count];
        Activations.Sigmoid(x.Value, y);
        return Record(y, x.Shape, new[] { x }, dy => Activations.SigmoidBackward(y, dy, x.GradBuffer()));
    }

    public Variable Tanh(Variable x)
    {
        var y = new float[x.Count];
        Activations.Tanh(x.Value, y);
        return Record(y, x.Shape, new[] { x }, dy => Activations.TanhBackward(y, dy, x.GradBuffer()));
    }

    public Variable Silu(Variable x)
    {
        var y = new float[x.Count];
        Activations.Silu(x.Value, y);
        return Record(y, x.Shape, new[] { x }, dy => Activations.SiluBackward(x.Value, dy, x.GradBuffer()));
    }

    public Variable Relu(Variable x)
    {
        var y = new float[x.Count];
        Activations.Relu(x.Value, y);
        return Record(y, x.Shape, new[] { x }, dy => Activations.ReluBackward(x.Value, dy, x.GradBuffer()));
    }

    /// <summary>Exact (erf) GELU.</summary>
    public Variable Gelu(Variable x)
    {
        var y = new float[x.Count];
        Activations.Gelu(x.Value, y);
        return Record(y, x.Shape, new[] { x }, dy => Activations.GeluBackward(x.Value, dy, x.GradBuffer()));
    }
}
