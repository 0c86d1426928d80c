namespace LoPAProxy.Core.Encoders;

/// <summary>
/// A frozen sentence encoder: instance text → x ∈ ℝ^h, the input of the soft-prompt generator.
/// Implementations are thread-safe and deterministic (same text, same bytes).
/// </summary>
public interface IInstanceEncoder
{
    /// <summary>The name adapters refer to ("minilm", "arctic-xs", a configured ONNX encoder, "fm-mean").</summary>
    string Name { get; }

    /// <summary>h, the size of each output vector.</summary>
    int Dim { get; }

    /// <summary>Tokens an instance is cut to (documented per encoder).</summary>
    int MaxTokens { get; }

    /// <summary>The tokens this encoder reads of <paramref name="text"/> (at most <see cref="MaxTokens"/>): what
    /// encoding it costs.</summary>
    int CountTokens(string text);

    /// <summary>Encodes each text into one row of <paramref name="output"/> [texts, Dim].</summary>
    void Encode(IReadOnlyList<string> texts, Span<float> output, CancellationToken cancel = default);
}
