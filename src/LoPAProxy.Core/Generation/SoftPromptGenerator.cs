using System.Numerics.Tensors;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Engine.Blas;
using LoPAProxy.Engine.Kernels;

namespace LoPAProxy.Core.Generation;

/// <summary>
/// Computes soft prompts Z [batch, m, d] from instance vectors x [batch, h] for one adapter:
///   lopa:          Z = Z_S ∘ σ(u·vᵀ),  u = U(x) [m, r], v = V(x) [d, r], U/V = Linear → tanh → Linear
///   lopa_add:      Z = Z_S + u·vᵀ
///   prompt_tuning: Z = Z_S
///   idpg:          Z = reshape(W_up·tanh(W_down·x) + b_up, [m, d])
/// (dropout is training-only). Instances are processed in chunks of at most 8 so every one takes the same
/// matrix-vector path: the bytes of an instance's Z do not depend on what it was batched with.
/// A workspace holds all scratch, so the hot path allocates nothing beyond the caller's output.
/// </summary>
public sealed class SoftPromptGenerator
{
    private const int Chunk = 8;
    private readonly LopaAdapter _adapter;
    private readonly GemmBackend _gemm;

    public int Rows => _adapter.Config.NumVirtualTokens;
    public int TokenDim => _adapter.Config.TokenDim;
    public int InputDim => _adapter.Config.EncoderDim;
    public LopaAdapter Adapter => _adapter;

    public SoftPromptGenerator(LopaAdapter adapter, GemmBackend? gemm = null)
    {
        _adapter = adapter;
        _gemm = gemm ?? Gemm.Managed; // matrix-vector shapes: the managed small-m path (see docs/benchmarks.md)
    }

    /// <summary>Reusable scratch for one thread.</summary>
    public sealed class Workspace
    {
        internal float[] Hidden = Array.Empty<float>(), U = Array.Empty<float>(), V = Array.Empty<float>();
    }

    public Workspace NewWorkspace()
    {
        AdapterConfig c = _adapter.Config;
        return new Workspace
        {
            Hidden = new float[Chunk * Math.Max(1, c.HiddenSize)],
            U = new float[Chunk * Math.Max(1, c.NumVirtualTokens * c.Rank)],
            V = new float[Chunk * Math.Max(1, c.TokenDim * c.Rank)],
        };
    }

    /// <summary>x [batch, h] → z [batch, m, d].</summary>
    public void Generate(ReadOnlySpan<float> x, int batch, Span<float> z, Workspace workspace)
    {
        AdapterConfig c = _adapter.Config;
        int m = c.NumVirtualTokens, d = c.TokenDim, md = m * d;
        if (z.Length < batch * md) throw new ArgumentException($"output needs {batch * md} floats");
        if (c.UsesEncoder && x.Length < batch * c.EncoderDim) throw new ArgumentException($"input needs {batch * c.EncoderDim} floats");
        for (int start = 0; start < batch; start += Chunk)
        {
            int n = Math.Min(Chunk, batch - start);
            ReadOnlySpan<float> xs = c.UsesEncoder ? x.Slice(start * c.EncoderDim, n * c.EncoderDim) : default;
            Span<float> zs = z.Slice(start * md, n * md);
            switch (c.Composition)
            {
                case Composition.PromptTuning:
                    for (int i = 0; i < n; i++) _adapter.PromptEmbeddings.AsSpan().CopyTo(zs.Slice(i * md, md));
                    break;
                case Composition.Idpg:
                    Head(_adapter.Idpg!, xs, n, workspace.Hidden, zs);
                    break;
                default:
                    int r = c.Rank;
                    Span<float> u = workspace.U.AsSpan(0, n * m * r), v = workspace.V.AsSpan(0, n * d * r);
                    Head(_adapter.U!, xs, n, workspace.Hidden, u);
                    Head(_adapter.V!, xs, n, workspace.Hidden, v);
                    for (int i = 0; i < n; i++)
                    {
                        // Z_I [m, d] = u_i [m, r] · v_iᵀ [r, d]
                        Span<float> zi = zs.Slice(i * md, md);
                        _gemm.Sgemm(false, true, m, d, r, 1f, u.Slice(i * m * r, m * r), r, v.Slice(i * d * r, d * r), r, 0f, zi, d);
                        if (c.Composition == Composition.Lopa)
                        {
                            TensorPrimitives.Sigmoid(zi, zi);
                            TensorPrimitives.Multiply(zi, _adapter.PromptEmbeddings, zi);
                        }
                        else
                        {
                            TensorPrimitives.Add(zi, _adapter.PromptEmbeddings, zi);
                        }
                    }
                    break;
            }
        }
    }

    /// <summary>Allocating convenience: x [batch, h] → new z [batch, m, d].</summary>
    public float[] Generate(ReadOnlySpan<float> x, int batch)
    {
        var z = new float[batch * Rows * TokenDim];
        Generate(x, batch, z, NewWorkspace());
        return z;
    }

    /// <summary>y [n, Out] = W_out · tanh(W_dense · x + b_dense) + b_out.</summary>
    private void Head(MlpHead head, ReadOnlySpan<float> x, int n, float[] hiddenScratch, Span<float> y)
    {
        Span<float> hidden = hiddenScratch.AsSpan(0, n * head.Hidden);
        Linear.Forward(x, n, head.In, head.DenseWeight, head.Hidden, head.DenseBias, hidden, _gemm);
        TensorPrimitives.Tanh(hidden, hidden);
        Linear.Forward(hidden, n, head.Hidden, head.OutWeight, head.Out, head.OutBias, y, _gemm);
    }
}
