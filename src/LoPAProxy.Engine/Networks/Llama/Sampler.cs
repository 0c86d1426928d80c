using LoPAProxy.Engine.Kernels;

namespace LoPAProxy.Engine.Networks.Llama;

/// <summary>
/// Next-token choice as llama2.c's run.c makes it: temperature 0 → argmax (first maximum); else
/// logits / T → softmax → optional top-k → top-p (nucleus) → a draw from run.c's xorshift64* generator,
/// so a seed reproduces a sequence.
/// </summary>
public sealed class Sampler
{
    private ulong _state;
    private readonly (float Prob, int Index)[] _scratch;

    public float Temperature { get; }
    public float TopP { get; }
    public int TopK { get; }

    public Sampler(int vocabSize, float temperature = 0f, float topP = 1f, int topK = 0, ulong seed = 42)
    {
        if (temperature < 0 || !float.IsFinite(temperature)) throw new ArgumentOutOfRangeException(nameof(temperature));
        if (topP <= 0 || topP > 1 || float.IsNaN(topP)) throw new ArgumentOutOfRangeException(nameof(topP));
        Temperature = temperature; TopP = topP; TopK = topK;
        _state = seed == 0 ? 0x9E3779B97F4A7C15UL : seed;
        _scratch = new (float, int)[vocabSize];
    }

    /// <summary>run.c's random_u32: xorshift64*.</summary>
    private uint NextU32()
    {
        _state ^= _state >> 12;
        _state ^= _state << 25;
        _state ^= _state >> 27;
        return (uint)((_state * 0x2545F4914F6CDD1DUL) >> 32);
    }

    private float NextF32() => (NextU32() >> 8) / 16777216.0f;

    /// <summary>Chooses a token; <paramref name="logits"/> is overwritten with probabilities when sampling.</summary>
    public int Sample(Span<float> logits)
    {
        if (Temperature == 0f) return ArgMax(logits);
        for (int i = 0; i < logits.Length; i++) logits[i] /= Temperature;
        Softmax.Row(logits);
        float coin = NextF32();
        bool filter = TopK > 0 && TopK < logits.Length || TopP < 1f;
        if (!filter)
        {
            float cdf = 0;
            for (int i = 0; i < logits.Length; i++) { cdf += logits[i]; if (coin < cdf) return i; }
            return logits.Length - 1;
        }
        // Candidates sorted by probability (descending, lower index first on ties), cut by top-k then top-p.
        int n = 0;
        for (int i = 0; i < logits.Length; i++) _scratch[n++] = (logits[i], i);
        Array.Sort(_scratch, 0, n, Comparer<(float Prob, int Index)>.Create((x, y) => x.Prob != y.Prob ? y.Prob.CompareTo(x.Prob) : x.Index.CompareTo(y.Index)));
        if (TopK > 0) n = Math.Min(n, TopK);
        float cumulative = 0;
        int last = n - 1;
        for (int i = 0; i < n; i++)
        {
            cumulative += _scratch[i].Prob;
            if (cumulative > TopP) { last = i; break; }
        }
        float mass = 0;
        for (int i = 0; i <= last; i++) mass += _scratch[i].Prob;
        float r = coin * mass, acc = 0;
        for (int i = 0; i <= last; i++) { acc += _scratch[i].Prob; if (r < acc) return _scratch[i].Index; }
        return _scratch[last].Index;
    }

    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }
}
