namespace LoPAProxy.Engine.Kernels;

/// <summary>Training losses, value and gradient together.</summary>
public static class Losses
{
    /// <summary>
    /// Cross-entropy of logits [rows, vocab] against one target id per row; a negative target ignores its row
    /// (loss on target tokens only). Returns the SUM of −log softmax(logits)[target] over the counted rows and writes
    /// dlogits = softmax − onehot for them (zeros for ignored rows), so the caller scales both by 1/count for a mean.
    /// </summary>
    public static double CrossEntropy(ReadOnlySpan<float> logits, int rows, int vocab, ReadOnlySpan<int> targets, Span<float> dlogits, out int counted)
    {
        if (logits.Length < rows * vocab || dlogits.Length < rows * vocab || targets.Length < rows)
            throw new ArgumentException("cross-entropy: buffers smaller than rows × vocab");
        double total = 0;
        counted = 0;
        for (int r = 0; r < rows; r++)
        {
            Span<float> g = dlogits.Slice(r * vocab, vocab);
            int target = targets[r];
            if (target < 0) { g.Clear(); continue; }
            if (target >= vocab) throw new ArgumentOutOfRangeException(nameof(targets), $"target {target} is outside the vocabulary of {vocab}");
            logits.Slice(r * vocab, vocab).CopyTo(g);
            // −log p = logsumexp − logit, computed from the max-shifted row for stability.
            float max = System.Numerics.Tensors.TensorPrimitives.Max(g);
            float logit = g[target];
            Softmax.Row(g);
            double sum = 0;
            ReadOnlySpan<float> row = logits.Slice(r * vocab, vocab);
            for (int i = 0; i < vocab; i++) sum += Math.Exp(row[i] - max);
            total += Math.Log(sum) + max - logit;
            g[target] -= 1f;
            counted++;
        }
        return total;
    }
}
