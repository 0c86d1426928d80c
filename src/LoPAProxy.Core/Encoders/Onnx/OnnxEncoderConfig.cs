using System.Text.Json;
using System.Text.Json.Serialization;

namespace LoPAProxy.Core.Encoders.Onnx;

public enum EncoderPooling { Mean, Cls, LastToken }

/// <summary>
/// encoder.json beside model.onnx: how a sentence-transformers ONNX export turns token states into one vector.
/// Missing file or fields: mean pooling, L2-normalised, 256 tokens, lower-casing from the tokenizer's own config.
/// </summary>
public sealed record OnnxEncoderConfig
{
    public const string FileName = "encoder.json";

    /// <summary>"mean" (attention-masked), "cls" (first token) or "last-token" (last unmasked token).</summary>
    [JsonPropertyName("pooling")] public string Pooling { get; init; } = "mean";
    [JsonPropertyName("normalize")] public bool Normalize { get; init; } = true;
    /// <summary>Tokens an instance is cut to, [CLS] and [SEP] included.</summary>
    [JsonPropertyName("max_tokens")] public int MaxTokens { get; init; } = 256;
    /// <summary>Overrides the tokenizer's own do_lower_case when set (WordPiece).</summary>
    [JsonPropertyName("lowercase")] public bool? Lowercase { get; init; }
    /// <summary>Byte-level BPE (tokenizer.json): put the BOS token first (default true).</summary>
    [JsonPropertyName("add_bos")] public bool AddBos { get; init; } = true;
    /// <summary>Byte-level BPE: end with the EOS token, as last-token-pooled embedders expect (default
    /// false).</summary>
    [JsonPropertyName("add_eos")] public bool AddEos { get; init; }

    public EncoderPooling PoolingMode => Pooling switch
    {
        "mean" => EncoderPooling.Mean,
        "cls" => EncoderPooling.Cls,
        "last-token" => EncoderPooling.LastToken,
        _ => throw new InvalidOperationException($"{FileName}: pooling '{Pooling}' is not mean, cls or last-token"),
    };

    public static OnnxEncoderConfig Load(string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) return new OnnxEncoderConfig();
        OnnxEncoderConfig config;
        try
        {
            config = JsonSerializer.Deserialize<OnnxEncoderConfig>(File.ReadAllBytes(path)) ?? new OnnxEncoderConfig();
        }
        catch (JsonException e)
        {
            throw new InvalidOperationException($"{path}: {e.Message}", e);
        }
        _ = config.PoolingMode;
        if (config.MaxTokens is < 2 or > 8192) throw new InvalidOperationException($"{path}: max_tokens must be 2 to 8192");
        return config;
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public void Save(string directory) =>
        File.WriteAllText(Path.Combine(directory, FileName), JsonSerializer.Serialize(this, Indented));
}

/// <summary>Where an ONNX encoder's files are and how ONNX Runtime runs it (proxy.json:
/// LoPA:OnnxEncoders:&lt;name&gt;).</summary>
public sealed record OnnxEncoderSettings
{
    /// <summary>The encoder directory (model.onnx, vocab.txt, encoder.json); unset for the packaged minilm /
    /// arctic-xs.</summary>
    public string? Directory { get; init; }
    /// <summary>"cpu" (default), "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>When CUDA cannot be loaded: false (default) fails with the reason; true logs it and runs on the
    /// CPU.</summary>
    public bool FallbackToCpu { get; init; }
    /// <summary>Intra-op threads; 0 = one per core, at most 4.</summary>
    public int Threads { get; init; }
    /// <summary>ORT's worker threads spin-wait by default; on shared cores that costs 5–30×, so off unless
    /// asked.</summary>
    public bool AllowSpinning { get; init; }

    public int EffectiveThreads => Threads > 0 ? Threads : Math.Clamp(Environment.ProcessorCount, 1, 4);

    /// <summary>The CUDA device index, or null for the CPU.</summary>
    public int? CudaDevice => Device switch
    {
        "cpu" => null,
        "cuda" => 0,
        _ when Device.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(Device[5..], out int n)
            && n >= 0 => n,
        _ => throw new InvalidOperationException($"device '{Device}' is not cpu, cuda or cuda:N"),
    };
}
