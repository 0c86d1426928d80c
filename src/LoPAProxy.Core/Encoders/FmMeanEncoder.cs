using System.Numerics.Tensors;
using LoPAProxy.Engine.Formats.Embeddings;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Core.Encoders;

/// <summary>
/// "fm-mean": the mean of the foundation model's own input-embedding rows over the instance's tokens
/// (h = the FM's hidden size; no extra model). No BOS is added. Instances are cut to <see cref="MaxTokens"/>;
/// an empty instance gives the zero vector.
/// </summary>
public sealed class FmMeanEncoder(ITokenizer tokenizer, IEmbeddingTable embeddingTable, int maxTokens = 4096)
    : IInstanceEncoder
{
    public const string EncoderName = "fm-mean";

    public string Name => EncoderName;
    public int Dim => embeddingTable.Dim;
    public int MaxTokens => maxTokens;

    public int CountTokens(string text) => Math.Min(maxTokens,
        tokenizer.Encode(InstanceText.Sanitize(InstanceText.Bound(text, maxTokens)), addBos: false, addEos: false)
            .Length);

    public void Encode(IReadOnlyList<string> texts, Span<float> output, CancellationToken cancel = default)
    {
        int dim = Dim;
        if (output.Length < texts.Count * dim) throw new ArgumentException("output too small");
        int vocab = embeddingTable.VocabSize;
        Span<float> embedding = dim <= 4096 ? stackalloc float[dim] : new float[dim];
        for (int i = 0; i < texts.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            int[] ids = tokenizer.Encode(InstanceText.Sanitize(texts[i]), addBos: false, addEos: false);
            Span<float> row = output.Slice(i * dim, dim);
            row.Clear();
            int n = Math.Min(ids.Length, maxTokens);
            for (int t = 0; t < n; t++)
            {
                if ((uint)ids[t] >= (uint)vocab) throw new InvalidOperationException($"token {ids[t]} outside the embedding table");
                embeddingTable.Row(ids[t], embedding);
                TensorPrimitives.Add(row, embedding, row);
            }
            if (n > 0) TensorPrimitives.Divide(row, n, row);
        }
    }
}
