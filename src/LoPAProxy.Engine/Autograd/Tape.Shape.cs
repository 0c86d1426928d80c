using System.Numerics.Tensors;
using LoPAProxy.Engine.Kernels;

namespace LoPAProxy.Engine.Autograd;

public sealed partial class Tape
{
    /// <summary>The same values under another shape of the same size.</summary>
    public Variable Reshape(Variable x, params int[] shape) =>
        Record(x.Value, (int[])shape.Clone(), new[] { x }, dy => TensorPrimitives.Add(x.GradBuffer(), dy, x.GradBuffer()));

    /// <summary>Rows [start, start + count) of x [rows, d].</summary>
    public Variable SliceRows(Variable x, int start, int count)
    {
        int d = x.Cols;
        if (start < 0 || count < 0 || start + count > x.Rows) throw new ArgumentOutOfRangeException(nameof(start), $"rows {start}..{start + count} of {x.Rows}");
        var y = x.Value.AsSpan(start * d, count * d).ToArray();
        return Record(y, new[] { count, d }, new[] { x }, dy =>
        {
            Span<float> g = x.GradBuffer().AsSpan(start * d, count * d);
            TensorPrimitives.Add(g, dy, g);
        });
    }

    /// <summary>[a₀ ; a₁ ; …]: row-wise concatenation of [rowsᵢ, d] values.</summary>
    public Variable ConcatRows(params Variable[] parts)
    {
        int d = parts[0].Cols, rows = 0;
        foreach (var p in parts)
        {
            if (p.Cols != d) throw new ArgumentException($"concat: rows of {p.Cols} and {d} values");
            rows += p.Rows;
        }
        var y = new float[rows * d];
        int at = 0;
        foreach (var p in parts) { p.Value.CopyTo(y, at); at += p.Count; }
        return Record(y, new[] { rows, d }, parts, dy =>
        {
            int offset = 0;
            foreach (var p in parts)
            {
                if (p.RequiresGrad) TensorPrimitives.Add(p.GradBuffer(), dy.AsSpan(offset, p.Count), p.GradBuffer());
                offset += p.Count;
            }
        });
    }

    /// <summary>Rows ids of table [vocab, d] (an embedding lookup). Backward scatter-adds into the table's gradient.</summary>
    public Variable Gather(Variable table, int[] ids)
    {
        int d = table.Cols, vocab = table.Rows;
        foreach (int id in ids) if ((uint)id >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(ids), $"id {id} is outside [0, {vocab})");
        var y = new float[ids.Length * d];
        Embedding.Gather(table.Value, vocab, d, ids, y);
        return Record(y, new[] { ids.Length, d }, new[] { table }, dy =>
        {
            float[] g = table.GradBuffer();
            for (int i = 0; i < ids.Length; i++)
            {
                Span<float> row = g.AsSpan(ids[i] * d, d);
                TensorPrimitives.Add(row, dy.AsSpan(i * d, d), row);
            }
        });
    }
}
