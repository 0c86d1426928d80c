using LoPAProxy.Engine.Kernels;

namespace LoPAProxy.Engine.Networks.Llama;

/// <summary>Hyper-parameters of a Llama-family decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU).</summary>
public sealed record LlamaConfig(
    int Dim, int HiddenDim, int Layers, int Heads, int KvHeads, int HeadDim, int VocabSize, int MaxSeqLen,
    float RopeTheta, float NormEps, RotaryLayout Rotary)
{
    public int QDim => Heads * HeadDim;
    public int KvDim => KvHeads * HeadDim;
}
