using LoPAProxy.Engine.Tensors;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Models;
using LoPAProxy.Proxy.SoftPrompts;

namespace LoPAProxy.Proxy.Dialects;

/// <summary>
/// For dialects that send whole sequences: per prompt, [Z (m×d) ; the FM's embedding rows of BOS + prompt tokens
/// (t×d)], (m+t)×d floats, each row taken when it is asked for — from Z or the FM's table — so the whole sequence
/// need never exist at once. <see cref="Ids"/> holds each prompt's tokens (BOS first).
/// </summary>
public sealed class FullSequences(float[] z, int[][] ids, FoundationModel model, int m, int d)
{
    public int Count => ids.Length;
    public int Dim => d;
    public int SoftPromptRows => m;
    public FoundationModel Model => model;
    public IReadOnlyList<int[]> Ids => ids;
    /// <summary>Z [prompts, m, d].</summary>
    public ReadOnlySpan<float> SoftPrompts => z;

    public int Rows(int sequence) => m + ids[sequence].Length;

    /// <summary>Row <paramref name="row"/> of sequence <paramref name="sequence"/> into
    /// <paramref name="destination"/> [d].</summary>
    public void Fill(int sequence, int row, Span<float> destination)
    {
        if (row < m)
        {
            z.AsSpan((sequence * m + row) * d, d).CopyTo(destination);
        }
        else
        {
            model.Table.Row(ids[sequence][row - m], destination);
        }
    }

    /// <summary>The CRC-32 of a vocabulary row in <paramref name="dtype"/> (from the model's
    /// <see cref="EmbeddingRowFacts"/>); null for Z's rows, which are new with every request.</summary>
    public uint? KnownCrc(int sequence, int row, DType dtype) =>
        row < m ? null : model.RowFacts.Crc(ids[sequence][row - m], dtype);

    /// <summary>The length of a vocabulary row's JSON text; null for Z's rows.</summary>
    public int? KnownJsonLength(int sequence, int row) =>
        row < m ? null : model.RowFacts.JsonLength(ids[sequence][row - m]);

    /// <summary>
    /// The prompts tokenised, the embedding values that will travel checked against the per-request cap and their
    /// rewrite's bytes reserved (<paramref name="bytesPerValue"/>), then Z computed. <paramref name="rowsTravel"/>:
    /// the FM's rows go on the wire (else only Z does).
    /// </summary>
    public static async Task<FullSequences> PrepareAsync(DialectRequest request, PromptBudget budget,
        SoftPromptService softPrompts, bool rowsTravel, double bytesPerValue, CancellationToken cancel)
    {
        FoundationModel model = budget.ModelOf(request.Backend)
            ?? throw new InvalidOperationException($"the {request.Backend.Dialect} dialect needs ModelPath");
        IReadOnlyList<CompletionPrompt> prompts = request.Prompts
            ?? throw new InvalidOperationException("whole sequences are made from completions prompts");
        if (prompts.Any(p => p.Text is null))
            throw ApiException.BadRequest("with an adapter, 'prompt' must be a string or a list of strings", "prompt");
        if (prompts.Any(p => p.Text!.Length == 0))
            throw Errors.EmptyPrompt(code: "nothing_to_encode");
        int m = request.Generator.Rows;
        int d = request.Generator.TokenDim;
        int[][] ids = prompts.Select(p => p.Ids ?? model.Tokenizer.Encode(p.Text!, addBos: true,
            addEos: false)).ToArray();
        long values = rowsTravel ? ids.Sum(t => (long)(m + t.Length) * d) : (long)ids.Length * m * d;
        await budget.ReserveRewriteAsync(request.Http, request.Backend, values, bytesPerValue, cancel);
        string[] texts = prompts.Select(p => p.Text!).ToArray();
        float[] z = await softPrompts.ComputeAsync(request.Generator, texts, request.Timings, cancel);
        return new FullSequences(z, ids, model, m, d);
    }
}
