using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoPAProxy.Training;

/// <summary>Conversions between the project's float buffers and libtorch parameters.</summary>
public static class Trainable
{
    /// <summary>A trainable float32 parameter holding a copy of <paramref name="values"/>.</summary>
    public static Parameter Parameter(float[] values, Device device, params long[] shape) =>
        new(tensor(values, shape, ScalarType.Float32, device), requires_grad: true);

    /// <summary>A tensor's values, copied to the CPU as a flat float array.</summary>
    public static float[] Values(Tensor t)
    {
        using Tensor cpu = t.detach().to(ScalarType.Float32).cpu().contiguous();
        return cpu.data<float>().ToArray();
    }

    /// <summary>Overwrites a parameter's values in place (no gradient recorded).</summary>
    public static void Assign(Parameter p, float[] values)
    {
        if (values.Length != p.numel())
            throw new ArgumentException($"{values.Length} values for a parameter of {p.numel()}");
        using var noGrad = no_grad();
        using Tensor source = tensor(values, p.shape, ScalarType.Float32, p.device);
        p.copy_(source);
    }
}
