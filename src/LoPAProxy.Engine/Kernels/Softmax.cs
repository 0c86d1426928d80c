using System.Numerics.Tensors;

namespace LoPAProxy.Engine.Kernels;

/// <summary>
/// Numerically stable softmax over a row. Masking is expressed as a valid prefix length:
/// entries at or past <c>valid</c> get probability 0 (causal masks: valid = position + 1;
/// padding masks: valid = sequence length). A fully masked row is all zeros.
/// </summary>
public static class Softmax
{
    public static void Row(Span<float> row, int valid)
    {
        if ((uint)valid > (uint)row.Length) throw new ArgumentOutOfRangeException(nameof(valid));
        row[valid..].Clear();
        if (valid == 0) return;
        Span<float> live = row[..valid];
        float max = TensorPrimitives.Max(live);
        TensorPrimitives.Subtract(live, max, live);
        TensorPrimitives.Exp(live, live);
        float sum = TensorPrimitives.Sum(live);
        TensorPrimitives.Divide(live, sum, live);
    }

    public static void Row(Span<float> row) => Row(row, row.Length);

    /// <summary>Softmax of every row of a [rows, cols] buffer.</summary>
    public static void Rows(Span<float> data, int rows, int cols)
    {
        for (int r = 0; r < rows; r++) Row(data.Slice(r * cols, cols), cols);
    }

    /// <summary>Causal softmax of a [rows, cols] score buffer whose row r is query position offset + r.</summary>
    public static void CausalRows(Span<float> data, int rows, int cols, int offset = 0)
    {
        for (int r = 0; r < rows; r++) Row(data.Slice(r * cols, cols), Math.Clamp(offset + r + 1, 0, cols));
    }
}
