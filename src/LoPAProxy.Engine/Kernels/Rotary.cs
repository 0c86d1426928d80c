namespace LoPAProxy.Engine.Kernels;

/// <summary>How a head's dimensions pair up for rotation.</summary>
public enum RotaryLayout
{
    /// <summary>Pairs (2i, 2i+1): Meta's original Llama and llama2.c.</summary>
    Interleaved,
    /// <summary>Pairs (i, i + d/2): Hugging Face's rotate_half (GPT-NeoX style).</summary>
    HalfSplit,
}

/// <summary>Rotary position embeddings, applied in place to x [tokens, heads, headDim].</summary>
public static class Rotary
{
    /// <param name="positions">absolute position of each token.</param>
    /// <param name="rotaryDim">leading dims of each head that rotate (= headDim for Llama); must be even.</param>
    public static void Apply(Span<float> x, int tokens, int heads, int headDim, ReadOnlySpan<int> positions,
        float theta, RotaryLayout layout, int rotaryDim = -1) =>
        Rotate(x, tokens, heads, headDim, positions, theta, layout, rotaryDim);

    private static void Rotate(Span<float> x, int tokens, int heads, int headDim, ReadOnlySpan<int> positions,
        float theta, RotaryLayout layout, int rotaryDim)
    {
        if (rotaryDim < 0) rotaryDim = headDim;
        if (rotaryDim % 2 != 0 || rotaryDim > headDim) throw new ArgumentException($"rotary dim {rotaryDim} must be even and ≤ head dim {headDim}");
        if (x.Length < tokens * heads * headDim || positions.Length < tokens) throw new ArgumentException("rotary: buffer smaller than tokens × heads × headDim");
        int half = rotaryDim / 2;
        Span<float> table = half <= 512 ? stackalloc float[2 * half] : new float[2 * half];
        Span<float> cosT = table[..half], sinT = table[half..];
        for (int t = 0; t < tokens; t++)
        {
            // Frequencies exactly as llama2.c computes them, in float: 1 / theta^(2i / d).
            for (int i = 0; i < half; i++)
            {
                float freq = 1f / MathF.Pow(theta, 2 * i / (float)rotaryDim);
                float angle = positions[t] * freq;
                cosT[i] = MathF.Cos(angle);
                sinT[i] = MathF.Sin(angle);
            }
            for (int h = 0; h < heads; h++)
            {
                Span<float> v = x.Slice((t * heads + h) * headDim, rotaryDim);
                for (int i = 0; i < half; i++)
                {
                    int i0 = layout == RotaryLayout.Interleaved ? 2 * i : i;
                    int i1 = layout == RotaryLayout.Interleaved ? 2 * i + 1 : i + half;
                    float a = v[i0], b = v[i1];
                    v[i0] = a * cosT[i] - b * sinT[i];
                    v[i1] = a * sinT[i] + b * cosT[i];
                }
            }
        }
    }
}
