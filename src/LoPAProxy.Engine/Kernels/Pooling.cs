using System.Numerics.Tensors;

namespace LoPAProxy.Engine.Kernels;

/// <summary>Sentence pooling over hidden states x [batch, seq, dim] with per-sequence valid lengths.</summary>
public static class Pooling
{
    /// <summary>out[b] = mean of x[b, 0..len_b); an empty sequence gives zeros.</summary>
    public static void Mean(ReadOnlySpan<float> x, int batch, int seq, int dim, ReadOnlySpan<int> lengths, Span<float> dst)
    {
        Check(x.Length, batch, seq, dim, lengths, dst.Length);
        for (int b = 0; b < batch; b++)
        {
            Span<float> o = dst.Slice(b * dim, dim);
            o.Clear();
            int len = lengths[b];
            for (int t = 0; t < len; t++) TensorPrimitives.Add(o, x.Slice((b * seq + t) * dim, dim), o);
            if (len > 0) TensorPrimitives.Divide(o, len, o);
        }
    }

    /// <summary>out[b] = x[b, 0] (BERT/RoBERTa's [CLS] token).</summary>
    public static void First(ReadOnlySpan<float> x, int batch, int seq, int dim, Span<float> dst)
    {
        if (seq < 1 || x.Length < batch * seq * dim || dst.Length < batch * dim) throw new ArgumentException("pooling: buffers too small");
        for (int b = 0; b < batch; b++) x.Slice(b * seq * dim, dim).CopyTo(dst.Slice(b * dim, dim));
    }

    /// <summary>out[b] = x[b, len_b − 1] (decoder LMs); an empty sequence gives zeros.</summary>
    public static void Last(ReadOnlySpan<float> x, int batch, int seq, int dim, ReadOnlySpan<int> lengths, Span<float> dst)
    {
        Check(x.Length, batch, seq, dim, lengths, dst.Length);
        for (int b = 0; b < batch; b++)
        {
            if (lengths[b] == 0) dst.Slice(b * dim, dim).Clear();
            else x.Slice((b * seq + lengths[b] - 1) * dim, dim).CopyTo(dst.Slice(b * dim, dim));
        }
    }

    /// <summary>Rows of [rows, dim] divided by max(‖row‖₂, eps), as torch.nn.functional.normalize.</summary>
    public static void L2Normalize(Span<float> x, int dim, float eps = 1e-12f)
    {
        if (dim <= 0 || x.Length % dim != 0) throw new ArgumentException("L2Normalize needs whole rows");
        for (int off = 0; off < x.Length; off += dim)
        {
            Span<float> row = x.Slice(off, dim);
            float norm = MathF.Max(TensorPrimitives.Norm(row), eps);
            TensorPrimitives.Divide(row, norm, row);
        }
    }

    private static void Check(int xLength, int batch, int seq, int dim, ReadOnlySpan<int> lengths, int dstLength)
    {
        if (xLength < batch * seq * dim || dstLength < batch * dim || lengths.Length < batch) throw new ArgumentException("pooling: buffers too small");
        for (int b = 0; b < batch; b++)
            if ((uint)lengths[b] > (uint)seq) throw new ArgumentOutOfRangeException(nameof(lengths), $"length {lengths[b]} outside [0, {seq}]");
    }
}
