namespace LoPAProxy.ModelServer.Generation;

/// <summary>One sampled token and, when the request asked for logprobs, its log-probability and the
/// <c>top_logprobs</c> most likely tokens at that position, most likely first.</summary>
public readonly record struct SampledToken(int Token, float Logprob, TokenLogprob[]? Top);

/// <summary>A token and its log-probability.</summary>
public readonly record struct TokenLogprob(int Token, float Logprob);

/// <summary>
/// Log-probabilities from one row of the model's logits: log softmax of the raw logits, before logit_bias, a grammar,
/// top-k/top-p or temperature shape the draw — vLLM's default (<c>raw_logprobs</c>), so a value says what the model
/// thinks of the token, whatever steered the choice.
/// </summary>
public static class TokenLogprobs
{
    /// <summary>At most this many alternatives per position (OpenAI's and vLLM's limit for top_logprobs).</summary>
    public const int MaxTop = 20;

    // logits [vocab] → log p(token), and the `top` largest log p in descending order
    public static SampledToken Of(ReadOnlySpan<float> logits, int token, int top)
    {
        float max = float.NegativeInfinity;
        foreach (float l in logits) max = Math.Max(max, l);
        double sum = 0;
        foreach (float l in logits) sum += Math.Exp(l - max);
        float logSum = max + (float)Math.Log(sum);
        return new SampledToken(token, logits[token] - logSum, top > 0 ? Largest(logits, top, logSum) : []);
    }

    /// <summary>The <paramref name="top"/> largest logits by insertion into a small sorted array (top ≤ 20).
    /// </summary>
    private static TokenLogprob[] Largest(ReadOnlySpan<float> logits, int top, float logSum)
    {
        int k = Math.Min(top, logits.Length);
        var best = new TokenLogprob[k];
        int filled = 0;
        for (int t = 0; t < logits.Length; t++)
        {
            float l = logits[t];
            if (filled == k && l <= best[k - 1].Logprob) continue;
            int at = filled < k ? filled++ : k - 1;
            while (at > 0 && best[at - 1].Logprob < l)
            {
                best[at] = best[at - 1];
                at--;
            }
            best[at] = new TokenLogprob(t, l);
        }
        for (int i = 0; i < k; i++) best[i] = best[i] with { Logprob = best[i].Logprob - logSum };
        return best;
    }
}
