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

    /// <summary>
    /// Backward of <see cref="Forward"/> (same shape and masks), accumulating into dq, dk and dv. Per query row the
    /// probabilities P are recomputed; then dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P∘(dP − Σ P∘dP), dQ += scale·dS·K and
    /// dK += scale·dSᵀ·Q, K/V gradients summed over the query heads that share them.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> dOut,
        Span<float> dq, Span<float> dk, Span<float> dv, Shape s, float scale, bool causal, int queryOffset = 0, int[]? keyLengths = null,
        Blas.GemmBackend? gemm = null)
    {
        if (s.KvHeads <= 0 || s.QueryHeads % s.KvHeads != 0) throw new ArgumentException($"{s.QueryHeads} query heads do not group over {s.KvHeads} KV heads");
        int qSize = s.Batch * s.QueryLength * s.QueryHeads * s.HeadDim, kvSize = s.Batch * s.KeyLength * s.KvHeads * s.HeadDim;
        if (q.Length < qSize || dOut.Length < qSize || dq.Length < qSize || k.Length < kvSize || v.Length < kvSize || dk.Length < kvSize || dv.Length < kvSize)
            throw new ArgumentException("attention backward: buffers smaller than the shape");
        if (s.QueryLength >= GemmFrom)
        {
            BackwardBlocks(q, k, v, dOut, dq, dk, dv, s, scale, causal, queryOffset, keyLengths, gemm ?? Blas.Gemm.Default);
            return;
        }
        int group = s.QueryHeads / s.KvHeads, d = s.HeadDim;
        var p = new float[Math.Max(1, s.KeyLength)];
        var dp = new float[Math.Max(1, s.KeyLength)];
        for (int b = 0; b < s.Batch; b++)
        {
            int keys = keyLengths == null ? s.KeyLength : Math.Clamp(keyLengths[b], 0, s.KeyLength);
            for (int t = 0; t < s.QueryLength; t++)
            {
                int valid = causal ? Math.Clamp(queryOffset + t + 1, 0, keys) : keys;
                for (int h = 0; h < s.QueryHeads; h++)
                {
                    int kvh = h / group, qAt = ((b * s.QueryLength + t) * s.QueryHeads + h) * d;
                    ReadOnlySpan<float> qv = q.Slice(qAt, d), go = dOut.Slice(qAt, d);
                    for (int j = 0; j < valid; j++)
                        p[j] = Dot(qv, k.Slice(((b * s.KeyLength + j) * s.KvHeads + kvh) * d, d)) * scale;
                    Softmax.Row(p.AsSpan(0, valid));
                    float sum = 0;
                    for (int j = 0; j < valid; j++)
                    {
                        int kvAt = ((b * s.KeyLength + j) * s.KvHeads + kvh) * d;
                        dp[j] = Dot(go, v.Slice(kvAt, d));
                        AddScaled(dv.Slice(kvAt, d), go, p[j]);
                        sum += p[j] * dp[j];
                    }
                    Span<float> gq = dq.Slice(qAt, d);
                    for (int j = 0; j < valid; j++)
                    {
                        int kvAt = ((b * s.KeyLength + j) * s.KvHeads + kvh) * d;
                        float ds = p[j] * (dp[j] - sum) * scale;
                        AddScaled(gq, k.Slice(kvAt, d), ds);
                        AddScaled(dk.Slice(kvAt, d), qv, ds);
                    }
                }
            }
        }
    }

    /// <summary>
    /// <see cref="Backward"/> for query blocks, per (batch row, head) as five GEMMs over the head's columns in place:
    /// P = softmax(scale·Q·Kᵀ); dV += Pᵀ·dO; dP = dO·Vᵀ; dS = scale·P∘(dP − rowsum(P∘dP)); dQ += dS·K; dK += dSᵀ·Q.
    /// </summary>
    private static void BackwardBlocks(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> dOut,
        Span<float> dq, Span<float> dk, Span<float> dv, Shape s, float scale, bool causal, int queryOffset, int[]? keyLengths, Blas.GemmBackend gemm)
    {
        int d = s.HeadDim, group = s.QueryHeads / s.KvHeads, ldq = s.QueryHeads * d, ldk = s.KvHeads * d, tq = s.QueryLength;
        float[] p = System.Buffers.ArrayPool<float>.Shared.Rent(Math.Max(1, tq * s.KeyLength));
        float[] dp = System.Buffers.ArrayPool<float>.Shared.Rent(Math.Max(1, tq * s.KeyLength));
        try
        {
            for (int b = 0; b < s.Batch; b++)
            {
                int keys = keyLengths == null ? s.KeyLength : Math.Clamp(keyLengths[b], 0, s.KeyLength);
                if (keys == 0) continue;
                ReadOnlySpan<float> qb = q.Slice(b * tq * ldq), kb = k.Slice(b * s.KeyLength * ldk), vb = v.Slice(b * s.KeyLength * ldk), ob = dOut.Slice(b * tq * ldq);
                Span<float> dqb = dq.Slice(b * tq * ldq), dkb = dk.Slice(b * s.KeyLength * ldk), dvb = dv.Slice(b * s.KeyLength * ldk);
                Span<float> P = p.AsSpan(0, tq * keys), dS = dp.AsSpan(0, tq * keys);
                for (int h = 0; h < s.QueryHeads; h++)
                {
                    int kvh = h / group;
                    gemm.Sgemm(false, true, tq, keys, d, scale, qb[(h * d)..], ldq, kb[(kvh * d)..], ldk, 0f, P, keys);
                    for (int t = 0; t < tq; t++) Softmax.Row(P.Slice(t * keys, keys), causal ? Math.Clamp(queryOffset + t + 1, 0, keys) : keys);
                    gemm.Sgemm(true, false, keys, d, tq, 1f, P, keys, ob[(h * d)..], ldq, 1f, dvb[(kvh * d)..], ldk);     // dV += Pᵀ·dO
                    gemm.Sgemm(false, true, tq, keys, d, 1f, ob[(h * d)..], ldq, vb[(kvh * d)..], ldk, 0f, dS, keys);      // dP = dO·Vᵀ
                    for (int t = 0; t < tq; t++)
                    {
                        Span<float> pr = P.Slice(t * keys, keys), sr = dS.Slice(t * keys, keys);
                        float sum = TensorPrimitives.Dot(pr, sr);
                        TensorPrimitives.Subtract(sr, sum, sr);
                        TensorPrimitives.Multiply(sr, pr, sr);
                        TensorPrimitives.Multiply(sr, scale, sr);
                    }
                    gemm.Sgemm(false, false, tq, d, keys, 1f, dS, keys, kb[(kvh * d)..], ldk, 1f, dqb[(h * d)..], ldq);    // dQ += dS·K
                    gemm.Sgemm(true, false, keys, d, tq, 1f, dS, keys, qb[(h * d)..], ldq, 1f, dkb[(kvh * d)..], ldk);     // dK += dSᵀ·Q
                }
            }
        }
        finally
        {
            System.Buffers.ArrayPool<float>.Shared.Return(p);
            System.Buffers.ArrayPool<float>.Shared.Return(dp);
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
