using System.Text.Json.Nodes;
using LoPAProxy.Engine.Formats.Torch;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Limits;
using LoPAProxy.Proxy.Requests;
using LoPAProxy.Proxy.SoftPrompts;

namespace LoPAProxy.Proxy.Dialects;

/// <summary>
/// vllm-completions: the whole sequence [Z ; the FM's embedding rows of the prompt tokens] as "prompt_embeds" on
/// /v1/completions — base64 of torch.save in the wire dtype, produced row by row as the body is sent
/// (<see cref="TorchTensorStream"/>). Needs the FM's tokenizer and input-embedding table.
/// </summary>
public sealed class VllmCompletionsDialect(SoftPromptService softPrompts, PromptBudget budget)
    : IBackendDialect, IDialectTraits
{
    public static string Name => "vllm-completions";
    public static bool NeedsModel => true;
    public EndpointKind SoftPromptEndpoint => EndpointKind.Completions;
    /// <summary>14.3 measured at d = 64 (frames, the JSON around the streamed tensors, pooled row buffers).</summary>
    public double RewriteBytesPerValue => 16;

    public async Task<RewriteResult> RewriteAsync(DialectRequest request, CancellationToken cancel)
    {
        JsonObject body = request.Body;
        if (body["prompt_embeds"] is not null)
            throw ApiException.BadRequest("send either an adapter or prompt_embeds, not both", "prompt_embeds");
        FullSequences sequences = await FullSequences.PrepareAsync(request, budget, softPrompts, rowsTravel: true,
            RewriteBytesPerValue, cancel);
        DType wire = SoftPromptService.WireType(request.Backend.WireDType);
        // Each sequence's base64 is produced row by row while the body is sent; the body holds a placeholder no
        // client text can forge (a fresh nonce) until then.
        string nonce = Guid.NewGuid().ToString("N");
        var embedded = new List<EmbeddedText>();
        var embeds = new JsonArray();
        for (int i = 0; i < sequences.Count; i++)
        {
            string placeholder = $"lopa-embeds-{nonce}-{i}";
            int sequence = i;
            var tensor = new TorchTensorStream(sequences.Rows(i), sequences.Dim, wire,
                (row, values) => sequences.Fill(sequence, row, values),
                row => sequences.KnownCrc(sequence, row, wire));
            embedded.Add(new EmbeddedText(placeholder, tensor));
            embeds.Add(placeholder);
        }
        body.Remove("prompt");
        body["prompt_embeds"] = request.Prompts!.Count == 1 ? embeds[0]!.DeepClone() : embeds;
        body["model"] = request.Backend.Model;
        return new RewriteResult(sequences.SoftPromptRows, embedded.Sum(e => e.Text.Length), embedded);
    }
}
