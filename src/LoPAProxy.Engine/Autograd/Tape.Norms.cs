using LoPAProxy.Engine.Kernels;

namespace LoPAProxy.Engine.Autograd;

public sealed partial class Tape
{
    /// <summary>RMSNorm of each row of x [rows, d] times weight [d].</summary>
    public Variable RmsNorm(Variable x, Variable weight, float eps)
    {
        int d = x.Cols;
        if (weight.Count != d) throw new ArgumentException($"rmsnorm weight has {weight.Count} values, rows have {d}");
        var y = new float[x.Count];
        Norms.RmsNorm(x.Value, weight.Value, y, d, eps);
        return Record(y, x.Shape, new[] { x, weight }, dy =>
            Norms.RmsNormBackward(x.Value, weight.Value, dy, x.RequiresGrad ? x.GradBuffer() : new float[x.Count],
                weight.RequiresGrad ? weight.GradBuffer() : Span<float>.Empty, d, eps));
    }
}
