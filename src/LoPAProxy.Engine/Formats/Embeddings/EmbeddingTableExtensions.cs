namespace LoPAProxy.Engine.Formats.Embeddings;

public static class EmbeddingTableExtensions
{
    /// <summary>The whole table as float32 [vocab × dim] (tools and tests; serving reads rows).</summary>
    public static float[] ReadAll(this IEmbeddingTable table)
    {
        var values = new float[(long)table.VocabSize * table.Dim];
        for (int t = 0; t < table.VocabSize; t++) table.Row(t, values.AsSpan(t * table.Dim, table.Dim));
        return values;
    }
}
