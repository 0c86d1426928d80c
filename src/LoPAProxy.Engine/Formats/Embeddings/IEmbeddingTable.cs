namespace LoPAProxy.Engine.Formats.Embeddings;

/// <summary>A model's token-embedding table [vocab, dim], read a row at a time as float32.</summary>
public interface IEmbeddingTable
{
    int VocabSize { get; }
    int Dim { get; }

    /// <summary>Row <paramref name="token"/> into <paramref name="destination"/> [dim].</summary>
    void Row(int token, Span<float> destination);
}
