using System.Diagnostics;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Core.Generation;
using LoPAProxy.Engine.Formats.Torch;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.OpenAi;

namespace LoPAProxy.Proxy.SoftPrompts;

/// <summary>
/// Instance texts → encoder → adapter's generator → Z [texts, m, d]. Each text is cut to what its encoder can use
/// (<see cref="InstanceText.Bound"/>) before tokenising, so encoder work per request is bounded too.
/// </summary>
public sealed class SoftPromptService(EncoderPool encoders, InstanceVectors vectors)
{
    public async Task<float[]> ComputeAsync(SoftPromptGenerator generator, IReadOnlyList<string> texts,
        SoftPromptTimings timings,
        CancellationToken cancel)
    {
        AdapterConfig c = generator.Adapter.Config;
        var x = Array.Empty<float>();
        var sw = Stopwatch.StartNew();
        if (c.UsesEncoder)
        {
            using Activity? span = Observability.ProxyTelemetry.Activities.StartActivity("lopa.encode");
            IInstanceEncoder encoder = EncoderFor(c);
            string[] bounded = texts.Select(t => InstanceText.Bound(t, encoder.MaxTokens)).ToArray();
            x = await vectors.EncodeAsync(encoder, bounded, cancel);
        }
        timings.EncoderMs += sw.Elapsed.TotalMilliseconds;
        sw.Restart();
        cancel.ThrowIfCancellationRequested();
        var z = new float[texts.Count * generator.Rows * generator.TokenDim];
        using (Observability.ProxyTelemetry.Activities.StartActivity("lopa.soft_prompt"))
            generator.Generate(x, texts.Count, z, generator.NewWorkspace());
        timings.GeneratorMs += sw.Elapsed.TotalMilliseconds;
        return z;
    }

    /// <summary>The adapter's encoder, or a 422 saying why it cannot serve this adapter here.</summary>
    public IInstanceEncoder EncoderFor(AdapterConfig config)
    {
        IInstanceEncoder encoder;
        try
        {
            encoder = encoders.Get(config.Encoder!);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or AdapterException or UnauthorizedAccessException
            or Engine.Formats.TensorFileException or Microsoft.ML.OnnxRuntime.OnnxRuntimeException)
        {
            throw new ApiException(422,
                $"the adapter needs encoder '{config.Encoder}', which cannot be loaded here: {e.Message}",
                "model", "encoder_unavailable");
        }
        if (encoder.Dim != config.EncoderDim)
        {
            throw new ApiException(422,
                $"the adapter expects {config.EncoderDim}-wide instance vectors; encoder '{config.Encoder}' here makes {encoder.Dim}",
                "model", "adapter_incompatible");
        }

        return encoder;
    }

    /// <summary>rows [count, d] as the base64 of torch.save in the wire dtype: exactly what vLLM decodes.</summary>
    public static string Base64(ReadOnlySpan<float> rows, int count, int d, DType wire) =>
        Convert.ToBase64String(TorchFile.SaveTensor(Tensor.FromArray(rows.ToArray(), count, d), wire));

    public static DType WireType(Configuration.WireDType wire) => wire switch
    {
        Configuration.WireDType.Bf16 => DType.BF16,
        Configuration.WireDType.Fp16 => DType.F16,
        _ => DType.F32,
    };
}
