using LoPAProxy.Engine.Kernels;

namespace LoPAProxy.Engine.Autograd;

public sealed partial class Tape
{
    /// <summary>
    /// Mean cross-entropy of logits [rows, vocab] over the rows whose target is ≥ 0 (−1 ignores a row: loss on
    /// target tokens only). A loss with no counted rows is 0 and sends no gradient.
    /// </summary>
    public Variable CrossEntropy(Variable logits, int[] targets)
    {
        int rows = logits.Rows, vocab = logits.Cols;
        if (targets.Length != rows) throw new ArgumentException($"cross-entropy: {targets.Length} targets for {rows} rows");
        var dlogits = new float[logits.Count];
        double sum = Losses.CrossEntropy(logits.Value, rows, vocab, targets, dlogits, out int counted);
        float inv = counted == 0 ? 0f : 1f / counted;
        return Record(new[] { (float)(sum * inv) }, new[] { 1 }, new[] { logits }, dy =>
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(dlogits, dy[0] * inv, logits.GradBuffer(), logits.GradBuffer()));
    }
}
