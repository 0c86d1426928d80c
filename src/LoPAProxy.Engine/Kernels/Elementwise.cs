using System.Numerics.Tensors;
using LoPAProxy.Engine.Tensors;

namespace LoPAProxy.Engine.Kernels;

public enum BinaryOp { Add, Subtract, Multiply, Divide }

/// <summary>Element-wise binary ops with NumPy/PyTorch broadcasting, and scaling.</summary>
public static class Elementwise
{
    public static Tensor Add(Tensor a, Tensor b) => Binary(a, b, BinaryOp.Add);
    public static Tensor Subtract(Tensor a, Tensor b) => Binary(a, b, BinaryOp.Subtract);
    public static Tensor Multiply(Tensor a, Tensor b) => Binary(a, b, BinaryOp.Multiply);
    public static Tensor Divide(Tensor a, Tensor b) => Binary(a, b, BinaryOp.Divide);

    /// <summary>out = a ⊙ b with broadcasting; the output is a new contiguous tensor.</summary>
    public static Tensor Binary(Tensor a, Tensor b, BinaryOp op)
    {
        int[] shape = BroadcastShape(a.Shape, b.Shape);
        var result = Tensor.Zeros(shape);
        Span<float> dst = result.Span;
        if (a.IsContiguous && b.IsContiguous && a.SameShape(b))
        {
            Apply(op, a.Span, b.Span, dst);
            return result;
        }
        // Row broadcast (e.g. x[..., d] + bias[d]): b is a contiguous suffix of a's shape.
        if (a.IsContiguous && b.IsContiguous && a.SameShape(result) && b.Count > 0 && IsSuffix(b.Shape, a.Shape))
        {
            ReadOnlySpan<float> av = a.Span, bv = b.Span;
            for (int off = 0; off < dst.Length; off += bv.Length)
                Apply(op, av.Slice(off, bv.Length), bv, dst.Slice(off, bv.Length));
            return result;
        }
        int[] sa = BroadcastStrides(a, shape), sb = BroadcastStrides(b, shape);
        int rank = shape.Length, pos = 0;
        Span<int> index = stackalloc int[Math.Max(rank, 1)];
        index.Clear();
        int oa = a.Offset, ob = b.Offset;
        for (int n = 0; n < dst.Length; n++)
        {
            dst[pos++] = Apply(op, a.Storage[oa], b.Storage[ob]);
            for (int d = rank - 1; d >= 0; d--)
            {
                index[d]++; oa += sa[d]; ob += sb[d];
                if (index[d] < shape[d]) break;
                oa -= sa[d] * shape[d]; ob -= sb[d] * shape[d]; index[d] = 0;
            }
        }
        return result;
    }

    /// <summary>dst = src · scale.</summary>
    public static void Scale(ReadOnlySpan<float> src, float scale, Span<float> dst) => TensorPrimitives.Multiply(src, scale, dst);

    public static Tensor Scale(Tensor x, float scale)
    {
        Tensor src = x.Contiguous(), result = Tensor.Zeros(x.Shape.ToArray());
        TensorPrimitives.Multiply(src.Span, scale, result.Span);
        return result;
    }

    public static void Apply(BinaryOp op, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(a, b, dst); break;
            case BinaryOp.Subtract: TensorPrimitives.Subtract(a, b, dst); break;
            case BinaryOp.Multiply: TensorPrimitives.Multiply(a, b, dst); break;
            case BinaryOp.Divide: TensorPrimitives.Divide(a, b, dst); break;
            default: throw new ArgumentOutOfRangeException(nameof(op));
        }
    }

    private static float Apply(BinaryOp op, float a, float b) => op switch
    {
        BinaryOp.Add => a + b,
        BinaryOp.Subtract => a - b,
        BinaryOp.Multiply => a * b,
        BinaryOp.Divide => a / b,
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    public static int[] BroadcastShape(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var shape = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            int db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (da != db && da != 1 && db != 1)
                throw new ArgumentException($"shapes [{string.Join(", ", a.ToArray())}] and [{string.Join(", ", b.ToArray())}] do not broadcast");
            shape[i] = da == 1 ? db : da;
        }
        return shape;
    }

    private static int[] BroadcastStrides(Tensor t, int[] shape)
    {
        var strides = new int[shape.Length];
        int lead = shape.Length - t.Rank;
        for (int i = 0; i < t.Rank; i++)
            strides[lead + i] = t.Shape[i] == 1 ? 0 : t.Strides[i];
        return strides;
    }

    private static bool IsSuffix(ReadOnlySpan<int> suffix, ReadOnlySpan<int> shape)
    {
        int lead = shape.Length - suffix.Length;
        if (lead < 0) return false;
        for (int i = 0; i < suffix.Length; i++) if (suffix[i] != shape[lead + i]) return false;
        return true;
    }
}
