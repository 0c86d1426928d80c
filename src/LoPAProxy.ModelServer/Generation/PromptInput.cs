namespace LoPAProxy.ModelServer.Generation;

/// <summary>Part of a prompt: token ids, or embedding rows [RowCount, hidden] a client sent.</summary>
public sealed record PromptPiece(int[]? Tokens, float[]? Rows, int RowCount)
{
    public int Count => Tokens?.Length ?? RowCount;

    public static PromptPiece OfTokens(int[] tokens) => new(tokens, null, 0);

    public static PromptPiece OfRows(float[] rows, int count) => new(null, rows, count);
}

/// <summary>One prompt as the decoder takes it: pieces in order, positions counted across them.</summary>
public sealed record PromptInput(IReadOnlyList<PromptPiece> Pieces)
{
    public int Count => Pieces.Sum(p => p.Count);

    public bool HasEmbeddings => Pieces.Any(p => p.Rows != null);
}

/// <summary>Why a generation ended, in OpenAI's words.</summary>
public enum FinishReason { Length, Stop }
