using BenchmarkDotNet.Attributes;
using LoPAProxy.Engine.Kernels;

namespace LoPAProxy.Benchmarks;

/// <summary>Memory-bound kernels over rows of 4096 floats: GB/s counts bytes read plus bytes written.</summary>
public class ElementwiseBenchmarks : IWork
{
    [Params(4096, 1 << 20)] public int Count { get; set; }
    [Params("add", "sigmoid", "gelu", "silu", "softmax", "rmsnorm")] public string Kernel { get; set; } = "add";

    private const int Dim = 4096;
    private float[] _x = null!, _y = null!, _w = null!, _out = null!;

    public (double Amount, string Unit) Work() => (Kernel == "add" ? 12.0 * Count : 8.0 * Count, "GB/s");

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(3);
        _x = Enumerable.Range(0, Count).Select(_ => (float)rng.NextDouble() * 4 - 2).ToArray();
        _y = (float[])_x.Clone();
        _w = Enumerable.Range(0, Dim).Select(_ => 1f).ToArray();
        _out = new float[Count];
    }

    [Benchmark]
    public void Run()
    {
        int dim = Math.Min(Dim, Count);
        switch (Kernel)
        {
            case "add": Elementwise.Apply(BinaryOp.Add, _x, _y, _out); break;
            case "sigmoid": Activations.Sigmoid(_x, _out); break;
            case "gelu": Activations.Gelu(_x, _out); break;
            case "silu": Activations.Silu(_x, _out); break;
            case "softmax": _x.CopyTo(_out, 0); Softmax.Rows(_out, Count / dim, dim); break;
            case "rmsnorm": Norms.RmsNorm(_x, _w.AsSpan(0, dim), _out, dim, 1e-5f); break;
        }
    }
}
