using System.Numerics.Tensors;

namespace LoPAProxy.Engine.Kernels;

/// <summary>
/// Batched scaled-dot-product multi-head attention with grouped KV heads (GQA/MQA).
/// q [batch, tq, qHeads, headDim], k and v [batch, tk, kvHeads, headDim], out like q.
/// Query head h reads KV head h / (qHeads / kvHeads).
/// Masks: <c>causal</c> lets query i (at absolute position queryOffset + i) see keys 0..queryOffset + i;
/// <c>keyLengths</c> (per batch row, optional) hides padded keys at and past the length.
/// </summary>
public static class Attention
{
    public readonly record struct Shape(int Batch, int QueryLength, int KeyLength, int QueryHeads, int KvHeads, int HeadDim);

    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> output,
        Shape s, float scale, bool causal, int queryOffset = 0, int[]? keyLengths = null, Blas.GemmBackend? gemm = null)
    {
        if (s.KvHeads <= 0 || s.QueryHeads % s.KvHeads != 0) throw new ArgumentException($"{s.QueryHeads} query heads do not group over {s.KvHeads} KV heads");
        if (q.Length < s.Batch * s.QueryLength * s.QueryHeads * s.HeadDim || output.Length < s.Batch * s.QueryLength * s.QueryHeads * s.HeadDim
            || k.Length < s.Batch * s.KeyLength * s.KvHeads * s.HeadDim || v.Length < s.Batch * s.KeyLength * s.KvHeads * s.HeadDim)
            throw new ArgumentException("attention: buffers smaller than the shape");
        if (keyLengths != null && keyLengths.Length < s.Batch) throw new ArgumentException("attention: one key length per batch row");
        if (s.QueryLength >= GemmFrom)
        {
            ForwardBlocks(q, k, v, output, s, scale, causal, queryOffset, keyLengths, gemm ?? Blas.Gemm.Default);
            return;
        }
        float[]? rented = s.KeyLength > 2048 ? System.Buffers.ArrayPool<float>.Shared.Rent(s.KeyLength) : null;
        Span<float> scores = rented ?? stackalloc float[s.KeyLength];
        try
        {
        int group = s.QueryHeads / s.KvHeads, d = s.HeadDim;
        for (int b = 0; b < s.Batch; b++)
        {
            int keys = keyLengths == null ? s.KeyLength : Math.Clamp(keyLengths[b], 0, s.KeyLength);
            for (int t = 0; t < s.QueryLength; t++)
            {
                int valid = causal ? Math.Clamp(queryOffset + t + 1, 0, keys) : keys;
                for (int h = 0; h < s.QueryHeads; h++)
                {
                    int kvh = h / group;
                    ReadOnlySpan<float> qv = q.Slice(((b * s.QueryLength + t) * s.QueryHeads + h) * d, d);
                    for (int j = 0; j < valid; j++)
                        scores[j] = Dot(qv, k.Slice(((b * s.KeyLength + j) * s.KvHeads + kvh) * d, d)) * scale;
                    Softmax.Row(scores[..valid]);
                    Span<float> o = output.Slice(((b * s.QueryLength + t) * s.QueryHeads + h) * d, d);
                    o.Clear();
                    for (int j = 0; j < valid; j++)
                        AddScaled(o, v.Slice(((b * s.KeyLength + j) * s.KvHeads + kvh) * d, d), scores[j]);
                }
            }
        }
        }
        finally
        {
            if (rented != null) System.Buffers.ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>Query blocks at least this long go through GEMM; single queries (decoding) through dot products.</summary>
    private const int GemmFrom = 4;

    /// <summary>
    /// Per (batch row, head): scores [tq, keys] = scale · Q_h·K_hᵀ and out_h = softmax(scores)·V_h as two GEMMs,
    /// addressing each head's columns in place through leading dimensions (q: qHeads·d, k and v: kvHeads·d).
    /// </summary>
    private static void ForwardBlocks(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> output,
        Shape s, float scale, bool causal, int queryOffset, int[]? keyLengths, Blas.GemmBackend gemm)
    {
        int d = s.HeadDim, group = s.QueryHeads / s.KvHeads, ldq = s.QueryHeads * d, ldk = s.KvHeads * d;
        float[] scores = System.Buffers.ArrayPool<float>.Shared.Rent(Math.Max(1, s.QueryLength * s.KeyLength));
        try
        {
            for (int b = 0; b < s.Batch; b++)
            {
                int keys = keyLengths == null ? s.KeyLength : Math.Clamp(keyLengths[b], 0, s.KeyLength);
                ReadOnlySpan<float> qb = q.Slice(b * s.QueryLength * ldq), kb = k.Slice(b * s.KeyLength * ldk), vb = v.Slice(b * s.KeyLength * ldk);
                Span<float> ob = output.Slice(b * s.QueryLength * ldq);
                for (int h = 0; h < s.QueryHeads; h++)
                {
                    int kvh = h / group;
                    Span<float> sc = scores.AsSpan(0, s.QueryLength * Math.Max(keys, 1));
                    if (keys > 0)
                        gemm.Sgemm(false, true, s.QueryLength, keys, d, scale, qb[(h * d)..], ldq, kb[(kvh * d)..], ldk, 0f, sc, keys);
                    for (int t = 0; t < s.QueryLength; t++)
                        Softmax.Row(sc.Slice(t * Math.Max(keys, 1), keys), causal ? Math.Clamp(queryOffset + t + 1, 0, keys) : keys);
                    if (keys > 0)
                        gemm.Sgemm(false, false, s.QueryLength, d, keys, 1f, sc, keys, vb[(kvh * d)..], ldk, 0f, ob[(h * d)..], ldq);
                    else
                        for (int t = 0; t < s.QueryLength; t++) ob.Slice(t * ldq + h * d, d).Clear();
                }
            }
        }
        finally
        {
            System.Buffers.ArrayPool<float>.Shared.Return(scores);
        }
    }

    // Head vectors are often short (8 in stories260K): below 32 floats a plain loop beats a SIMD call's overhead.
    private const int SimdFrom = 32;

    private static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length >= SimdFrom) return TensorPrimitives.Dot(a, b);
        float sum = 0;
        for (int i = 0; i < a.Length; i++) sum += a[i] * b[i];
        return sum;
    }

    private static void AddScaled(Span<float> o, ReadOnlySpan<float> x, float w)
    {
        if (o.Length >= SimdFrom) { TensorPrimitives.MultiplyAdd(x, w, o, o); return; }
        for (int i = 0; i < o.Length; i++) o[i] += w * x[i];
    }
}
