namespace LoPAProxy.Engine.Networks.Llama;

/// <summary>Hyper-parameters of a Llama-family decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU).</summary>
public sealed record LlamaConfig(
    int Dim, int HiddenDim, int Layers, int Heads, int KvHeads, int HeadDim, int VocabSize, int MaxSeqLen,
    float RopeTheta, float NormEps, RotaryLayout Rotary)
{
    public int QDim => Heads * HeadDim;
    public int KvDim => KvHeads * HeadDim;
}

/// <summary>How a head's dimensions pair up for rotation.</summary>
public enum RotaryLayout
{
    /// <summary>Pairs (2i, 2i+1): Meta's original Llama and llama2.c.</summary>
    Interleaved,
    /// <summary>Pairs (i, i + d/2): Hugging Face's rotate_half (GPT-NeoX style).</summary>
    HalfSplit,
}
