using LoPAProxy.Engine.Autograd;
using LoPAProxy.Engine.Kernels;

namespace LoPAProxy.Engine.Networks.Llama;

/// <summary>A rank-r update W + scale·B·A of one frozen projection W [out, in]: A [r, in], B [out, r] (trainable).</summary>
public sealed record LoraProjection(Variable A, Variable B, float Scale);

/// <summary>LoRA updates by layer for the attention projections ("q", "k", "v", "o"); absent entries stay frozen as is.</summary>
public sealed class LoraSet
{
    private readonly Dictionary<(int Layer, string Projection), LoraProjection> _updates = new();
    public void Add(int layer, string projection, LoraProjection update) => _updates[(layer, projection)] = update;
    public LoraProjection? Find(int layer, string projection) => _updates.GetValueOrDefault((layer, projection));
    public IEnumerable<((int Layer, string Projection) Key, LoraProjection Update)> All => _updates.Select(kv => (kv.Key, kv.Value));
}

/// <summary>
/// The decoder's forward on a <see cref="Tape"/>, for training with the FM frozen: every weight is a constant, so
/// backward computes gradients to the input rows (soft prompts) and to LoRA updates only — no weight gradients and
/// no optimiser state for the FM. Same maths as <see cref="LlamaModel.Forward"/>, for a whole right-padded batch at once.
/// </summary>
public static class LlamaTraining
{
    /// <summary>
    /// x [batch · tokens, dim] (row b·tokens + t is sequence b's position t) → final-normed hidden states, same shape.
    /// <paramref name="lengths"/> (per sequence, optional) hides padded positions from every real query.
    /// </summary>
    public static Variable Hidden(this LlamaModel model, Tape tape, Variable x, int batch, int tokens, int[]? lengths = null, LoraSet? lora = null)
    {
        LlamaConfig c = model.Config;
        int d = c.Dim;
        if (x.Count != batch * tokens * d) throw new ArgumentException($"input has {x.Count} values, [{batch} · {tokens}, {d}] needs {batch * tokens * d}");
        if (tokens > c.MaxSeqLen) throw new ArgumentException($"sequence of {tokens} positions exceeds the context of {c.MaxSeqLen}");
        int[] positions = new int[batch * tokens];
        for (int i = 0; i < positions.Length; i++) positions[i] = i % tokens;
        var shape = new Attention.Shape(batch, tokens, tokens, c.Heads, c.KvHeads, c.HeadDim);
        float scale = 1f / MathF.Sqrt(c.HeadDim);
        Variable W(float[] w, int rows, int cols) => tape.Constant(w, rows, cols);
        Variable Project(int layer, string name, Variable input, float[] weight, int outDim, int inDim)
        {
            Variable y = tape.Linear(input, W(weight, outDim, inDim));
            if (lora?.Find(layer, name) is not { } update) return y;
            Variable delta = tape.Linear(tape.Linear(input, update.A), update.B);     // [n, out] = x · Aᵀ · Bᵀ
            return tape.Add(y, tape.Scale(delta, update.Scale));
        }

        Variable h = x;
        for (int l = 0; l < c.Layers; l++)
        {
            LlamaLayer w = model.Layers[l];
            Variable n = tape.RmsNorm(h, tape.Constant(w.AttentionNorm, d), c.NormEps);
            Variable q = tape.Rotary(Project(l, "q", n, w.Wq, c.QDim, d), c.Heads, c.HeadDim, positions, c.RopeTheta, c.Rotary);
            Variable k = tape.Rotary(Project(l, "k", n, w.Wk, c.KvDim, d), c.KvHeads, c.HeadDim, positions, c.RopeTheta, c.Rotary);
            Variable v = Project(l, "v", n, w.Wv, c.KvDim, d);
            Variable att = tape.Attention(q, k, v, shape, scale, causal: true, lengths);
            h = tape.Add(h, Project(l, "o", att, w.Wo, d, c.QDim));
            Variable f = tape.RmsNorm(h, tape.Constant(w.FfnNorm, d), c.NormEps);
            Variable gate = tape.Silu(tape.Linear(f, W(w.W1, c.HiddenDim, d)));
            Variable up = tape.Linear(f, W(w.W3, c.HiddenDim, d));
            h = tape.Add(h, tape.Linear(tape.Mul(gate, up), W(w.W2, d, c.HiddenDim)));
        }
        return tape.RmsNorm(h, tape.Constant(model.FinalNorm, d), c.NormEps);
    }

    /// <summary>Logits [rows.Length, vocab] of the given rows of <see cref="Hidden"/>'s output (only the rows a loss needs).</summary>
    public static Variable Logits(this LlamaModel model, Tape tape, Variable hidden, int[] rows) =>
        tape.Linear(tape.Gather(hidden, rows), tape.Constant(model.Classifier, model.Config.VocabSize, model.Config.Dim));
}
