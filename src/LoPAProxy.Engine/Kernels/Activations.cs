using System.Numerics.Tensors;

namespace LoPAProxy.Engine.Kernels;

public enum GeluForm { Erf, Tanh }

/// <summary>Point-wise non-linearities, dst may alias src.</summary>
public static class Activations
{
    public static void Sigmoid(ReadOnlySpan<float> src, Span<float> dst) => TensorPrimitives.Sigmoid(src, dst);

    public static void Tanh(ReadOnlySpan<float> src, Span<float> dst) => TensorPrimitives.Tanh(src, dst);

    /// <summary>SiLU / swish: x · σ(x).</summary>
    public static void Silu(ReadOnlySpan<float> src, Span<float> dst)
    {
        for (int i = 0; i < src.Length; i++)
        {
            float x = src[i];
            dst[i] = x / (1f + MathF.Exp(-x));
        }
    }

    /// <summary>ReLU: max(x, 0).</summary>
    public static void Relu(ReadOnlySpan<float> src, Span<float> dst) => TensorPrimitives.Max(src, 0f, dst);

    /// <summary>GELU: exact 0.5·x·(1 + erf(x/√2)), or PyTorch's approximate='tanh' form.</summary>
    public static void Gelu(ReadOnlySpan<float> src, Span<float> dst, GeluForm form = GeluForm.Erf)
    {
        const double InvSqrt2 = 0.70710678118654752440, Sqrt2OverPi = 0.79788456080286535588;
        for (int i = 0; i < src.Length; i++)
        {
            double x = src[i];
            dst[i] = form == GeluForm.Erf
                ? (float)(0.5 * x * (1.0 + Erf(x * InvSqrt2)))
                : (float)(0.5 * x * (1.0 + Math.Tanh(Sqrt2OverPi * (x + 0.044715 * x * x * x))));
        }
    }

    /// <summary>erf(x) with |error| below 1.2e-7 (Numerical Recipes' Chebyshev erfc), enough for float32.</summary>
    public static double Erf(double x)
    {
        double z = Math.Abs(x);
        double t = 1.0 / (1.0 + 0.5 * z);
        double erfc = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
            t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? 1.0 - erfc : erfc - 1.0;
    }
}
