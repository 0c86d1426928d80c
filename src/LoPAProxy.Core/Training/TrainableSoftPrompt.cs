using LoPAProxy.Core.Adapters;
using LoPAProxy.Engine.Autograd;

namespace LoPAProxy.Core.Training;

/// <summary>
/// The soft-prompt generator of an adapter on a <see cref="Tape"/>: the same maths as
/// <see cref="Generation.SoftPromptGenerator"/>, differentiable in the adapter's weights, which it trains in place
/// (so the trained adapter is saved as is). Parameter order is fixed: Z_S, then U, V or IDPG heads (dense weight,
/// dense bias, out weight, out bias).
/// </summary>
public sealed class TrainableSoftPrompt
{
    private readonly LopaAdapter _adapter;
    private Variable[] _leaves = Array.Empty<Variable>();

    public TrainableSoftPrompt(LopaAdapter adapter)
    {
        _adapter = adapter;
        var list = new List<float[]>();
        if (adapter.PromptEmbeddings != null) list.Add(adapter.PromptEmbeddings);
        foreach (MlpHead? head in new[] { adapter.U, adapter.V, adapter.Idpg })
            if (head != null) list.AddRange(new[] { head.DenseWeight, head.DenseBias, head.OutWeight, head.OutBias }.OfType<float[]>());
        Parameters = list;
    }

    public LopaAdapter Adapter => _adapter;
    public IReadOnlyList<float[]> Parameters { get; }
    public int Rows => _adapter.Config.NumVirtualTokens;

    /// <summary>Gradients of <see cref="Parameters"/> from the last <see cref="Build"/>'s tape after its backward (null where none reached).</summary>
    public float[]?[] Gradients() => _leaves.Select(l => l.Grad).ToArray();

    /// <summary>x [batch, h] (null for prompt tuning) → Z [batch · m, d] on the tape; rows i·m.. are instance i's prompt.</summary>
    public Variable Build(Tape tape, float[]? x, int batch)
    {
        AdapterConfig c = _adapter.Config;
        int m = c.NumVirtualTokens, d = c.TokenDim, r = c.Rank;
        var leaves = new List<Variable>();
        Variable Leaf(float[] value, params int[] shape) { var v = tape.Parameter(value, shape); leaves.Add(v); return v; }
        Variable? zs = _adapter.PromptEmbeddings is { } p ? Leaf(p, m, d) : null;
        Func<Variable, Variable>? u = _adapter.U is { } hu ? Head(hu) : null, v = _adapter.V is { } hv ? Head(hv) : null,
            idpg = _adapter.Idpg is { } hi ? Head(hi) : null;
        _leaves = leaves.ToArray();

        Func<Variable, Variable> Head(MlpHead h)
        {
            Variable dw = Leaf(h.DenseWeight, h.Hidden, h.In);
            Variable? db = h.DenseBias is { } b1 ? Leaf(b1, h.Hidden) : null;
            Variable ow = Leaf(h.OutWeight, h.Out, h.Hidden);
            Variable? ob = h.OutBias is { } b2 ? Leaf(b2, h.Out) : null;
            return input => tape.Linear(tape.Tanh(tape.Linear(input, dw, db)), ow, ob);
        }

        if (c.Composition == Composition.PromptTuning) return tape.ConcatRows(Enumerable.Repeat(zs!, batch).ToArray());
        if (x is null || x.Length != batch * c.EncoderDim) throw new ArgumentException($"instance vectors: need [{batch}, {c.EncoderDim}]");
        Variable xs = tape.Constant(x, batch, c.EncoderDim);
        if (c.Composition == Composition.Idpg) return tape.Reshape(idpg!(xs), batch * m, d);
        Variable us = u!(xs), vs = v!(xs);                                         // [batch, m·r], [batch, d·r]
        var prompts = new Variable[batch];
        for (int i = 0; i < batch; i++)
        {
            Variable zi = tape.MatMul(tape.Reshape(tape.SliceRows(us, i, 1), m, r), tape.Reshape(tape.SliceRows(vs, i, 1), d, r), transB: true); // [m, d]
            prompts[i] = c.Composition == Composition.Lopa ? tape.Mul(zs!, tape.Sigmoid(zi)) : tape.Add(zs!, zi);
        }
        return tape.ConcatRows(prompts);
    }
}
