using LoPAProxy.Core.FoundationModels;
using LoPAProxy.Engine.Formats.Embeddings;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Proxy.Models;

/// <summary>
/// What the proxy needs of a backend's foundation model: its tokenizer, its input-embedding table [vocab, dim]
/// (memory-mapped in its file's type, a row converted when asked for), its context length, and the most UTF-8 bytes
/// one token can stand for (a cheap lower bound on token counts).
/// </summary>
public sealed record FoundationModel(ITokenizer Tokenizer, IEmbeddingTable Table, int ContextLength,
    int MaxTokenBytes)
{
    public int Dim => Table.Dim;
    public int VocabSize => Table.VocabSize;

    /// <summary>Per-row CRCs and JSON lengths, learnt as rows are sent (streamed bodies size themselves with
    /// them).</summary>
    public EmbeddingRowFacts RowFacts { get; } = new(Table);

    /// <summary>A GGUF file, a llama2.c checkpoint or a Hugging Face directory (only the vocabulary is read).</summary>
    public static FoundationModel Load(string path)
    {
        var fm = FoundationModelVocabulary.Load(path);
        return new FoundationModel(fm.Tokenizer, fm.Table, fm.ContextLength, LongestPiece(fm.Tokenizer));
    }

    /// <summary>Bytes of the longest piece: no token covers more input than this, so tokens ≥ bytes / this.</summary>
    private static int LongestPiece(ITokenizer tokenizer)
    {
        int longest = 1;
        for (int t = 0; t < tokenizer.VocabSize; t++)
            longest = Math.Max(longest, tokenizer.DecodePiece(-1, t).Length);
        return longest;
    }
}
