using System.Numerics.Tensors;
using System.Text.Json.Serialization;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Core.Generation;
using LoPAProxy.OpenAi;
using LoPAProxy.Proxy.Configuration;
using LoPAProxy.Proxy.SoftPrompts;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Inspection;

/// <summary>One instance's soft prompt, taken apart (rows of d values).</summary>
public sealed record InstanceView(
    [property: JsonPropertyName("text")] string Text,
    [property: JsonPropertyName("z")] float[][] Z,
    [property: JsonPropertyName("gate")] float[][]? Gate,
    [property: JsonPropertyName("row_norms")] double[] RowNorms,
    [property: JsonPropertyName("offset_row_norms")] double[]? OffsetRowNorms,
    [property: JsonPropertyName("encoder_ms")] double EncoderMs,
    [property: JsonPropertyName("generator_ms")] double GeneratorMs);

/// <summary>What an adapter does to instances: its Z_S, one instance in full, and a projection of many.</summary>
public sealed record SoftPromptView(
    [property: JsonPropertyName("method")] string Method,
    [property: JsonPropertyName("m")] int M,
    [property: JsonPropertyName("d")] int D,
    [property: JsonPropertyName("rank")] int Rank,
    [property: JsonPropertyName("encoder")] string? Encoder,
    [property: JsonPropertyName("prompt_embeddings")] float[][]? PromptEmbeddings,
    [property: JsonPropertyName("instance")] InstanceView? Instance,
    [property: JsonPropertyName("projection")] ProjectionResult? Projection);

/// <summary>
/// The numbers behind the console's pictures of a soft prompt, computed by the same generator and encoder that
/// serve requests. For LoPA the gate σ(u·vᵀ) is the generator's own output for the adapter with Z_S set to ones
/// (Z = Z_S ∘ gate, so nothing is recomputed differently); the offset per row is ‖Z − Z_S ∘ 0.5‖ (0.5: the gate
/// with no instance signal). For lopa_add the offset is ‖Z − Z_S‖; prompt tuning has none; IDPG has no Z_S.
/// Bounded before any work: at most <see cref="MaxTexts"/> texts, m·d within the request value budget, the
/// projection's n²·m·d within <see cref="MaxProjectionWork"/>, and the tokens the encoder will read — each text
/// cut first to what the encoder can read — within <see cref="MaxEncoderTokens"/>.
/// </summary>
public sealed class SoftPromptInspector(SoftPromptService softPrompts, IOptions<LoPAOptions> options)
{
    public const int MaxTexts = 256;
    public const long MaxProjectionWork = 400_000_000;
    /// <summary>Tokens one inspection may have the encoder read: 64 texts at MiniLM's 256, ~3 s on two cores.</summary>
    public const int MaxEncoderTokens = 16_384;

    public async Task<SoftPromptView> InspectAsync(SoftPromptGenerator generator, string? text,
        IReadOnlyList<string> texts, CancellationToken cancel)
    {
        AdapterConfig c = generator.Adapter.Config;
        int m = c.NumVirtualTokens, d = c.TokenDim;
        Check(text, texts, m, d);
        if (c.UsesEncoder)
        {
            IInstanceEncoder encoder = softPrompts.EncoderFor(c);
            text = text is null ? null : InstanceText.Bound(text, encoder.MaxTokens);
            texts = texts.Select(t => InstanceText.Bound(t, encoder.MaxTokens)).ToArray();
            CheckEncoderWork(encoder, text, texts);
        }
        InstanceView? instance = text is null ? null : await InstanceAsync(generator, text, cancel);
        ProjectionResult? projection = null;
        if (texts.Count >= 2)
        {
            float[] z = await softPrompts.ComputeAsync(generator, texts, new SoftPromptTimings(), cancel);
            projection = Projection.Of(z, texts.Count, m * d);
        }
        float[]? zs = generator.Adapter.PromptEmbeddings;
        return new SoftPromptView(AdapterConfig.CompositionName(c.Composition), m, d, c.Rank, c.Encoder,
            zs is null ? null : Rows(zs, m, d), instance, projection);
    }

    private void Check(string? text, IReadOnlyList<string> texts, int m, int d)
    {
        if (text is null && texts.Count == 0)
            throw ApiException.BadRequest("send 'text' (one instance) and/or 'texts' (two or more)", "text");
        if (texts.Count > MaxTexts)
            throw ApiException.BadRequest($"at most {MaxTexts} texts per request", "texts", "too_many_prompts");
        long values = (long)m * d * Math.Max(1, texts.Count);
        if (values * 3 > options.Value.Limits.EmbeddingValuesCap(null, 0))
        {
            throw ApiException.BadRequest($"{values} soft-prompt values are more than one request may build here " +
                "(send fewer texts)", "texts", "request_too_large");
        }

        if (Projection.Cost(texts.Count, m * d) > MaxProjectionWork)
        {
            throw ApiException.BadRequest("too many texts to project for an adapter of this size", "texts",
                "request_too_large");
        }
    }

    /// <summary>Counted by the encoder's own tokenizer (cheap beside encoding), before anything is encoded.</summary>
    private static void CheckEncoderWork(IInstanceEncoder encoder, string? text, IReadOnlyList<string> texts)
    {
        long tokens = texts.Sum(t => (long)encoder.CountTokens(t)) + (text is null ? 0 : encoder.CountTokens(text));
        if (tokens > MaxEncoderTokens)
        {
            throw ApiException.BadRequest($"the encoder '{encoder.Name}' would read {tokens} tokens of these texts; " +
                $"one inspection may have it read {MaxEncoderTokens} (send fewer or shorter texts; each is cut to " +
                $"{encoder.MaxTokens} tokens)", "texts", "request_too_large");
        }
    }

    private async Task<InstanceView> InstanceAsync(SoftPromptGenerator generator, string text,
        CancellationToken cancel)
    {
        AdapterConfig c = generator.Adapter.Config;
        int m = c.NumVirtualTokens, d = c.TokenDim;
        var timings = new SoftPromptTimings();
        float[] z = await softPrompts.ComputeAsync(generator, [text], timings, cancel);
        float[]? zs = generator.Adapter.PromptEmbeddings;
        float[]? gate = null;
        float[]? reference = null;
        if (c.Composition == Composition.Lopa && zs is not null)
        {
            gate = await softPrompts.ComputeAsync(GateOf(generator.Adapter), [text], new SoftPromptTimings(), cancel);
            reference = new float[zs.Length];
            TensorPrimitives.Multiply(zs, 0.5f, reference);
        }
        else if (c.Composition == Composition.LopaAdd)
        {
            reference = zs;
        }

        return new InstanceView(text, Rows(z, m, d), gate is null ? null : Rows(gate, m, d), RowNorms(z, null, m, d),
            reference is null ? null : RowNorms(z, reference, m, d), timings.EncoderMs, timings.GeneratorMs);
    }

    /// <summary>The adapter with Z_S = ones: its Z is σ(u·vᵀ).</summary>
    private static SoftPromptGenerator GateOf(LopaAdapter a)
    {
        float[] ones = new float[a.PromptEmbeddings!.Length];
        Array.Fill(ones, 1f);
        return new SoftPromptGenerator(new LopaAdapter(a.Config, ones, a.U, a.V, a.Idpg));
    }

    /// <summary>‖z_i − ref_i‖ per row (‖z_i‖ without a reference).</summary>
    private static double[] RowNorms(float[] z, float[]? reference, int m, int d)
    {
        var norms = new double[m];
        var difference = new float[d];
        for (int i = 0; i < m; i++)
        {
            ReadOnlySpan<float> row = z.AsSpan(i * d, d);
            if (reference is null) row.CopyTo(difference);
            else TensorPrimitives.Subtract(row, reference.AsSpan(i * d, d), difference);
            norms[i] = TensorPrimitives.Norm(difference);
        }
        return norms;
    }

    private static float[][] Rows(float[] values, int m, int d) =>
        Enumerable.Range(0, m).Select(i => values.AsSpan(i * d, d).ToArray()).ToArray();
}
