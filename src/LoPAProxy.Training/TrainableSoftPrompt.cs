using LoPAProxy.Core.Adapters;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoPAProxy.Training;

/// <summary>
/// An adapter's soft-prompt generator as libtorch parameters: the maths of
/// <see cref="Core.Generation.SoftPromptGenerator"/>, differentiable in the adapter's weights. Parameter order is
/// fixed: Z_S, then the U, V or IDPG heads (dense weight, dense bias, out weight, out bias).
/// <see cref="WriteBack"/> copies the trained values into the adapter, which is then saved as is.
/// </summary>
public sealed class TrainableSoftPrompt : IDisposable
{
    private sealed record Head(Parameter DenseWeight, Parameter? DenseBias, Parameter OutWeight, Parameter? OutBias)
    {
        /// <summary>x [B, in] → Linear → tanh → Linear → [B, out].</summary>
        public Tensor Forward(Tensor x) =>
            nn.functional.linear(nn.functional.linear(x, DenseWeight, DenseBias).tanh(), OutWeight, OutBias);
    }

    private readonly Parameter? _zs;
    private readonly Head? _u, _v, _idpg;
    private readonly List<(Parameter Parameter, float[] Target)> _parameters = new();

    public TrainableSoftPrompt(LopaAdapter adapter, Device device)
    {
        Adapter = adapter;
        AdapterConfig c = adapter.Config;
        if (adapter.PromptEmbeddings is { } zs) _zs = Add(zs, c.NumVirtualTokens, c.TokenDim);
        _u = adapter.U is { } u ? HeadOf(u) : null;
        _v = adapter.V is { } v ? HeadOf(v) : null;
        _idpg = adapter.Idpg is { } idpg ? HeadOf(idpg) : null;

        Parameter Add(float[] values, params long[] shape)
        {
            Parameter p = Trainable.Parameter(values, device, shape);
            _parameters.Add((p, values));
            return p;
        }

        Head HeadOf(MlpHead h) => new(Add(h.DenseWeight, h.Hidden, h.In),
            h.DenseBias is { } b1 ? Add(b1, h.Hidden) : null,
            Add(h.OutWeight, h.Out, h.Hidden),
            h.OutBias is { } b2 ? Add(b2, h.Out) : null);
    }

    public LopaAdapter Adapter { get; }
    public int Rows => Adapter.Config.NumVirtualTokens;
    public IReadOnlyList<Parameter> Parameters => _parameters.Select(p => p.Parameter).ToList();

    /// <summary>x [B, h] (null for prompt tuning) → Z [B, m, d].</summary>
    public Tensor Build(Tensor? x, long batch)
    {
        AdapterConfig c = Adapter.Config;
        int m = c.NumVirtualTokens, d = c.TokenDim, r = c.Rank;
        if (c.Composition == Composition.PromptTuning) return _zs!.unsqueeze(0).expand(batch, m, d);
        if (x is null)
            throw new ArgumentException($"{AdapterConfig.CompositionName(c.Composition)} needs instance vectors");
        if (c.Composition == Composition.Idpg) return _idpg!.Forward(x).view(batch, m, d);
        Tensor u = _u!.Forward(x).view(batch, m, r);                              // [B, m, r]
        Tensor v = _v!.Forward(x).view(batch, d, r);                              // [B, d, r]
        Tensor zi = u.bmm(v.transpose(1, 2));                                     // [B, m, d]
        return c.Composition == Composition.Lopa ? _zs! * zi.sigmoid() : _zs! + zi;
    }

    /// <summary>Copies the parameters' current values into the adapter's buffers.</summary>
    public void WriteBack()
    {
        foreach (var (parameter, target) in _parameters) Trainable.Values(parameter).CopyTo(target, 0);
    }

    public void Dispose()
    {
        foreach (var (parameter, _) in _parameters) parameter.Dispose();
    }
}
