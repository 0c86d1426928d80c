namespace LoPAProxy.Engine.Formats.Embeddings;

/// <summary>A table held in memory as float32 [vocab × dim] (a small model, a test).</summary>
public sealed class ArrayEmbeddingTable : IEmbeddingTable
{
    private readonly float[] _values;

    public ArrayEmbeddingTable(float[] values, int dim)
    {
        if (dim <= 0 || values.Length % dim != 0)
            throw new ArgumentException($"{values.Length} values are not whole rows of {dim}", nameof(values));
        _values = values;
        Dim = dim;
    }

    public int VocabSize => _values.Length / Dim;
    public int Dim { get; }

    public void Row(int token, Span<float> destination)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)token, (uint)VocabSize, nameof(token));
        _values.AsSpan(token * Dim, Dim).CopyTo(destination);
    }
}
