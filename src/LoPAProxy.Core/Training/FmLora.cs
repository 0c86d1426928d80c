using LoPAProxy.Engine.Autograd;
using LoPAProxy.Engine.Networks.Llama;

namespace LoPAProxy.Core.Training;

/// <summary>
/// The server-side baseline: LoRA updates W + (α/r)·B·A on the FM's attention projections (PEFT's defaults for Llama:
/// q and v; A kaiming-uniform, bound 1/√in; B zeros, so training starts at the FM). Produces a score, not a proxy
/// adapter — the point of LoPA is that this state would have to live on the model server.
/// </summary>
public sealed class FmLora
{
    private readonly List<(int Layer, string Projection, float[] A, float[] B, int In, int Out)> _updates = new();
    private readonly float _scale;
    private readonly int _rank;
    private LoraSet? _last;

    public FmLora(LlamaConfig c, int rank, float alpha, IReadOnlyList<string> projections, int seed)
    {
        if (rank <= 0) throw new ArgumentOutOfRangeException(nameof(rank), "LoRA rank must be positive");
        _rank = rank;
        _scale = alpha / rank;
        var rng = new Random(seed);
        for (int l = 0; l < c.Layers; l++)
            foreach (string p in projections)
            {
                (int inDim, int outDim) = p switch
                {
                    "q" => (c.Dim, c.QDim), "k" => (c.Dim, c.KvDim), "v" => (c.Dim, c.KvDim), "o" => (c.QDim, c.Dim),
                    _ => throw new ArgumentException($"LoRA target '{p}' is not an attention projection (q, k, v, o)"),
                };
                float bound = 1f / MathF.Sqrt(inDim);
                float[] a = new float[rank * inDim];
                for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * bound;
                _updates.Add((l, p, a, new float[outDim * rank], inDim, outDim));
            }
    }

    /// <summary>A and B of every update, in (layer, projection) order.</summary>
    public IReadOnlyList<float[]> Parameters => _updates.SelectMany(u => new[] { u.A, u.B }).ToList();

    public long ParameterCount => _updates.Sum(u => (long)u.A.Length + u.B.Length);

    /// <summary>The updates as trainable leaves on <paramref name="tape"/>, for <see cref="LlamaTraining.Hidden"/>.</summary>
    public LoraSet Build(Tape tape)
    {
        var set = new LoraSet();
        foreach (var u in _updates)
            set.Add(u.Layer, u.Projection, new LoraProjection(tape.Parameter(u.A, _rank, u.In), tape.Parameter(u.B, u.Out, _rank), _scale));
        _last = set;
        return set;
    }

    /// <summary>Gradients of <see cref="Parameters"/> after the last built tape's backward.</summary>
    public float[]?[] Gradients() => _last is null ? new float[]?[_updates.Count * 2]
        : _updates.SelectMany(u => { var p = _last.Find(u.Layer, u.Projection)!; return new[] { p.A.Grad, p.B.Grad }; }).ToArray();
}
