using LoPAProxy.Core.Encoders.Onnx;

namespace LoPAProxy.Core.Encoders;

/// <summary>Where encoders find their files and how ONNX ones run. Unset paths fall back to the environment.</summary>
public sealed record EncoderOptions
{
    /// <summary>The foundation model (llama2.c .bin or HF directory) whose embedding rows fm-mean averages. Env:
    /// LOPA_FM_MODEL.</summary>
    public string? FoundationModel { get; init; }
    /// <summary>
    /// ONNX encoders by name: a directory for one's own (any sentence-transformers export), and device, threads and
    /// spinning for any, the packaged minilm / arctic-xs included.
    /// </summary>
    public IReadOnlyDictionary<string, OnnxEncoderSettings> Onnx { get; init; } = new Dictionary<string, OnnxEncoderSettings>();
    /// <summary>Told when an encoder falls back to the CPU.</summary>
    public Action<string>? Warn { get; init; }
}

/// <summary>
/// Creates instance encoders by name: "minilm" and "arctic-xs" (ONNX, shipped by NuGet packages), any ONNX encoder
/// directory configured under its own name, and "fm-mean".
/// </summary>
public static class EncoderFactory
{
    public static readonly string[] BuiltIn =
        { PackagedEncoders.MiniLm.Name, PackagedEncoders.ArcticXs.Name, FmMeanEncoder.EncoderName };

    /// <summary>The encoder names these options can create.</summary>
    public static IEnumerable<string> Names(EncoderOptions options) => BuiltIn.Concat(options.Onnx.Keys).Distinct();

    public static bool IsKnown(string name, EncoderOptions options) => Names(options).Contains(name);

    /// <summary>An encoder's output size when it is known without loading it.</summary>
    public static int? KnownDim(string name) => name is "minilm" or "arctic-xs" ? 384 : null;

    public static IInstanceEncoder Create(string name, EncoderOptions options)
    {
        OnnxEncoderSettings? onnx = options.Onnx.GetValueOrDefault(name);
        if (onnx?.Directory is { } directory) return OnnxSentenceEncoder.Load(name, directory, onnx, options.Warn);
        if (PackagedEncoders.Find(name) is { } package)
        {
            return OnnxSentenceEncoder.Load(name, PackagedEncoders.Directory(package), onnx
                ?? new OnnxEncoderSettings(), options.Warn);
        }

        return name switch
        {
            FmMeanEncoder.EncoderName => FmMean(options.FoundationModel
                ?? Environment.GetEnvironmentVariable("LOPA_FM_MODEL")
                ?? throw new InvalidOperationException("the fm-mean encoder needs the foundation model (--model or LOPA_FM_MODEL)")),
            _ => throw new InvalidOperationException($"unknown encoder '{name}' ({string.Join(", ", Names(options))})"),
        };
    }

    private static FmMeanEncoder FmMean(string modelPath)
    {
        var fm = FoundationModels.FoundationModelVocabulary.Load(modelPath);
        return new FmMeanEncoder(fm.Tokenizer, fm.Table);
    }
}
