using System.Runtime.CompilerServices;

namespace LoPAProxy.Engine.Tensors;

/// <summary>
/// A float32 tensor: a shared storage array plus offset, shape and strides (in elements).
/// Views (slice, select, transpose, reshape of contiguous data) share storage and copy nothing.
/// Kernels work on contiguous tensors; call <see cref="Contiguous"/> on a strided view first.
/// </summary>
public sealed class Tensor
{
    private readonly int[] _shape;
    private readonly int[] _strides;

    public float[] Storage { get; }
    public int Offset { get; }
    public ReadOnlySpan<int> Shape => _shape;
    public ReadOnlySpan<int> Strides => _strides;
    public int Rank => _shape.Length;
    public int Count { get; }

    private Tensor(float[] storage, int offset, int[] shape, int[] strides)
    {
        Storage = storage;
        Offset = offset;
        _shape = shape;
        _strides = strides;
        Count = ShapeMath.Count(shape);
    }

    public static Tensor Zeros(params int[] shape)
    {
        int[] s = (int[])shape.Clone();
        return new Tensor(new float[ShapeMath.Count(s)], 0, s, ShapeMath.ContiguousStrides(s));
    }

    /// <summary>Wraps <paramref name="data"/> (not copied) as a contiguous tensor of the given shape.</summary>
    public static Tensor FromArray(float[] data, params int[] shape)
    {
        int[] s = (int[])shape.Clone();
        int n = ShapeMath.Count(s);
        if (n != data.Length)
            throw new ArgumentException($"shape [{string.Join(", ", s)}] holds {n} elements but the array has {data.Length}");
        return new Tensor(data, 0, s, ShapeMath.ContiguousStrides(s));
    }

    public static Tensor Scalar(float value) => new(new[] { value }, 0, Array.Empty<int>(), Array.Empty<int>());

    public int Dim(int axis) => _shape[NormalizeAxis(axis)];

    public bool IsContiguous
    {
        get
        {
            int expected = 1;
            for (int i = _shape.Length - 1; i >= 0; i--)
            {
                if (_shape[i] != 1 && _strides[i] != expected) return false;
                expected *= _shape[i];
            }
            return true;
        }
    }

    /// <summary>The elements of a contiguous tensor, in row-major order.</summary>
    public Span<float> Span
    {
        get
        {
            if (!IsContiguous) throw new InvalidOperationException("Span needs a contiguous tensor; call Contiguous() first");
            return Storage.AsSpan(Offset, Count);
        }
    }

    public float this[params int[] index]
    {
        get => Storage[ElementOffset(index)];
        set => Storage[ElementOffset(index)] = value;
    }

    private int ElementOffset(int[] index)
    {
        if (index.Length != _shape.Length) throw new ArgumentException($"index has {index.Length} dims, tensor has {_shape.Length}");
        int off = Offset;
        for (int i = 0; i < index.Length; i++)
        {
            if ((uint)index[i] >= (uint)_shape[i]) throw new ArgumentOutOfRangeException(nameof(index), $"index {index[i]} out of range for dim {i} of size {_shape[i]}");
            off += index[i] * _strides[i];
        }
        return off;
    }

    /// <summary>A view of <paramref name="length"/> entries of dimension <paramref name="axis"/> starting at <paramref name="start"/>.</summary>
    public Tensor Slice(int axis, int start, int length)
    {
        axis = NormalizeAxis(axis);
        if (start < 0 || length < 0 || start + length > _shape[axis])
            throw new ArgumentOutOfRangeException(nameof(start), $"slice [{start}, {start + length}) outside dim {axis} of size {_shape[axis]}");
        int[] shape = (int[])_shape.Clone();
        shape[axis] = length;
        return new Tensor(Storage, Offset + start * _strides[axis], shape, (int[])_strides.Clone());
    }

    /// <summary>A view with dimension <paramref name="axis"/> fixed at <paramref name="index"/> (rank drops by one).</summary>
    public Tensor Select(int axis, int index)
    {
        axis = NormalizeAxis(axis);
        if ((uint)index >= (uint)_shape[axis]) throw new ArgumentOutOfRangeException(nameof(index));
        int[] shape = new int[_shape.Length - 1], strides = new int[_shape.Length - 1];
        for (int i = 0, j = 0; i < _shape.Length; i++)
        {
            if (i == axis) continue;
            shape[j] = _shape[i]; strides[j++] = _strides[i];
        }
        return new Tensor(Storage, Offset + index * _strides[axis], shape, strides);
    }

    public Tensor Transpose(int axis0, int axis1)
    {
        axis0 = NormalizeAxis(axis0); axis1 = NormalizeAxis(axis1);
        int[] shape = (int[])_shape.Clone(), strides = (int[])_strides.Clone();
        (shape[axis0], shape[axis1]) = (shape[axis1], shape[axis0]);
        (strides[axis0], strides[axis1]) = (strides[axis1], strides[axis0]);
        return new Tensor(Storage, Offset, shape, strides);
    }

    /// <summary>Same elements, new shape; one dimension may be -1. A view when contiguous, else a copy.</summary>
    public Tensor Reshape(params int[] shape)
    {
        int[] s = ShapeMath.ResolveReshape(shape, Count);
        Tensor source = IsContiguous ? this : Contiguous();
        return new Tensor(source.Storage, source.Offset, s, ShapeMath.ContiguousStrides(s));
    }

    /// <summary>This tensor if already contiguous, else a packed copy.</summary>
    public Tensor Contiguous() => IsContiguous ? this : Clone();

    /// <summary>A packed, independent copy.</summary>
    public Tensor Clone()
    {
        var dst = new float[Count];
        CopyTo(dst);
        return new Tensor(dst, 0, (int[])_shape.Clone(), ShapeMath.ContiguousStrides(_shape));
    }

    /// <summary>Copies the elements in row-major order into <paramref name="destination"/>.</summary>
    public void CopyTo(Span<float> destination)
    {
        if (destination.Length < Count) throw new ArgumentException("destination too small");
        if (IsContiguous) { Storage.AsSpan(Offset, Count).CopyTo(destination); return; }
        int pos = 0;
        CopyStrided(0, Offset, destination, ref pos);
    }

    private void CopyStrided(int axis, int offset, Span<float> dst, ref int pos)
    {
        int n = _shape[axis], stride = _strides[axis];
        if (axis == _shape.Length - 1)
        {
            for (int i = 0; i < n; i++) dst[pos++] = Storage[offset + i * stride];
            return;
        }
        for (int i = 0; i < n; i++) CopyStrided(axis + 1, offset + i * stride, dst, ref pos);
    }

    public float[] ToArray()
    {
        var a = new float[Count];
        CopyTo(a);
        return a;
    }

    public bool SameShape(Tensor other) => Shape.SequenceEqual(other.Shape);

    public override string ToString() => $"Tensor[{string.Join(", ", _shape)}]";

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int NormalizeAxis(int axis)
    {
        int a = axis < 0 ? axis + _shape.Length : axis;
        if ((uint)a >= (uint)_shape.Length) throw new ArgumentOutOfRangeException(nameof(axis), $"axis {axis} out of range for rank {_shape.Length}");
        return a;
    }
}
