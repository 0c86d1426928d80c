namespace LoPAProxy.Engine.Tensors;

/// <summary>Shape arithmetic with overflow checks (shapes may come from untrusted files).</summary>
public static class ShapeMath
{
    public static int Count(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension {d}");
            n *= d;
            if (n > Array.MaxLength) throw new ArgumentException($"shape [{string.Join(", ", shape.ToArray())}] exceeds the largest array");
        }
        return (int)n;
    }

    /// <summary>Element count of an untrusted shape, or -1 when it overflows <paramref name="limit"/>.</summary>
    public static long CheckedCount(ReadOnlySpan<long> shape, long limit)
    {
        long n = 1;
        foreach (long d in shape)
        {
            if (d < 0) return -1;
            if (d != 0 && n > limit / d) return -1;
            n *= d;
        }
        return n;
    }

    public static int[] ContiguousStrides(ReadOnlySpan<int> shape)
    {
        var strides = new int[shape.Length];
        int s = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { strides[i] = s; s *= Math.Max(shape[i], 1); }
        return strides;
    }

    public static int[] ResolveReshape(int[] shape, int count)
    {
        int[] s = (int[])shape.Clone();
        int infer = -1; long known = 1;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == -1) { if (infer >= 0) throw new ArgumentException("only one dimension may be -1"); infer = i; }
            else if (s[i] < 0)
            {
                throw new ArgumentException($"invalid dimension {s[i]}");
            }
            else
            {
                known *= s[i];
            }
        }
        if (infer >= 0)
        {
            if (known == 0 || count % known != 0) throw new ArgumentException($"cannot reshape {count} elements into [{string.Join(", ", shape)}]");
            s[infer] = (int)(count / known);
        }
        else if (known != count)
        {
            throw new ArgumentException($"cannot reshape {count} elements into [{string.Join(", ", shape)}]");
        }

        return s;
    }
}
