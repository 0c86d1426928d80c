using LoPAProxy.Engine.Kernels;

namespace LoPAProxy.Engine.Autograd;

public sealed partial class Tape
{
    /// <summary>Rotary position embedding of x [tokens, heads · headDim]. Backward rotates the gradient back.</summary>
    public Variable Rotary(Variable x, int heads, int headDim, int[] positions, float theta, RotaryLayout layout)
    {
        int tokens = x.Count / (heads * headDim);
        var y = (float[])x.Value.Clone();
        Kernels.Rotary.Apply(y, tokens, heads, headDim, positions, theta, layout);
        return Record(y, x.Shape, new[] { x }, dy =>
        {
            var g = (float[])dy.Clone();
            Kernels.Rotary.ApplyInverse(g, tokens, heads, headDim, positions, theta, layout);
            System.Numerics.Tensors.TensorPrimitives.Add(x.GradBuffer(), g, x.GradBuffer());
        });
    }

    /// <summary>
    /// Multi-head (GQA) attention: q [batch · tq, qHeads · d], k and v [batch · tk, kvHeads · d] → like q.
    /// </summary>
    public Variable Attention(Variable q, Variable k, Variable v, Kernels.Attention.Shape shape, float scale, bool causal, int[]? keyLengths = null)
    {
        var o = new float[q.Count];
        Kernels.Attention.Forward(q.Value, k.Value, v.Value, o, shape, scale, causal, 0, keyLengths, Gemm);
        return Record(o, q.Shape, new[] { q, k, v }, dO =>
            Kernels.Attention.Backward(q.Value, k.Value, v.Value, dO,
                q.RequiresGrad ? q.GradBuffer() : new float[q.Count], k.RequiresGrad ? k.GradBuffer() : new float[k.Count],
                v.RequiresGrad ? v.GradBuffer() : new float[v.Count], shape, scale, causal, 0, keyLengths, Gemm));
    }
}
