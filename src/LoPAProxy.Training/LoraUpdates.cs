using LoPAProxy.Engine.Networks.Llama;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoPAProxy.Training;

/// <summary>One rank-r update W + scale·B·A of a frozen projection W [out, in]: A [r, in], B [out, r].</summary>
public sealed record LoraUpdate(Parameter A, Parameter B, double Scale)
{
    /// <summary>scale · x·Aᵀ·Bᵀ for x [..., in].</summary>
    public Tensor Delta(Tensor x) => nn.functional.linear(nn.functional.linear(x, A), B) * Scale;
}

/// <summary>
/// The server-side baseline: LoRA on the FM's attention projections (PEFT's defaults for Llama: q and v, α = 8;
/// A kaiming-uniform with bound 1/√in, B zeros, so training starts at the FM). It produces a score, not a proxy
/// adapter: the point of LoPA is that this state would have to live on the model server.
/// </summary>
public sealed class LoraUpdates : IDisposable
{
    private readonly Dictionary<(int Layer, string Projection), LoraUpdate> _updates = new();
    private readonly List<Parameter> _parameters = new();

    public LoraUpdates(LlamaConfig c, int rank, float alpha, IReadOnlyList<string> projections, int seed,
        Device device)
    {
        if (rank <= 0) throw new ArgumentOutOfRangeException(nameof(rank), "LoRA rank must be positive");
        var rng = new Random(seed);
        for (int l = 0; l < c.Layers; l++)
        {
            foreach (string p in projections)
            {
                (int inDim, int outDim) = p switch
                {
                    "q" => (c.Dim, c.QDim),
                    "k" => (c.Dim, c.KvDim),
                    "v" => (c.Dim, c.KvDim),
                    "o" => (c.QDim, c.Dim),
                    _ => throw new ArgumentException($"LoRA target '{p}' is not an attention projection (q, k, v, o)"),
                };
                float bound = 1f / MathF.Sqrt(inDim);
                float[] a = new float[rank * inDim];
                for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * bound;
                var update = new LoraUpdate(Trainable.Parameter(a, device, rank, inDim),
                    Trainable.Parameter(new float[outDim * rank], device, outDim, rank), alpha / (double)rank);
                _updates[(l, p)] = update;
                _parameters.Add(update.A);
                _parameters.Add(update.B);
            }
        }
    }

    /// <summary>A and B of every update, in (layer, projection) order.</summary>
    public IReadOnlyList<Parameter> Parameters => _parameters;

    public LoraUpdate? Find(int layer, string projection) => _updates.GetValueOrDefault((layer, projection));

    public void Dispose()
    {
        foreach (Parameter p in _parameters) p.Dispose();
    }
}
