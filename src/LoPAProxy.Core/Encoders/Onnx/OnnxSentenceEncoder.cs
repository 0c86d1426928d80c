using System.Numerics.Tensors;
using LoPAProxy.Engine.Tokenizers;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace LoPAProxy.Core.Encoders.Onnx;

/// <summary>
/// A sentence encoder exported to ONNX (sentence-transformers layout): a directory with model.onnx, the WordPiece
/// vocabulary (vocab.txt, or a WordPiece tokenizer.json) and optionally encoder.json (pooling, normalisation, max
/// tokens). Runs on ONNX Runtime, CPU or CUDA (<see cref="OnnxEncoderSettings"/>). The tokenizer is this project's
/// WordPiece: it equals Hugging Face's on 203/203 GLUE sentences where Microsoft.ML.Tokenizers' BertTokenizer does
/// not (DESIGN §4; WordPieceTokenizerTests and OnnxEncoderTests check it against HF's tokenizers in JS).
///
/// A batch is padded to its longest instance with attention mask 0, so a row's vector does not depend on its
/// batch-mates beyond float rounding (measured ≤ 1e-6; OnnxEncoderTests). Inputs the graph does not declare
/// (token_type_ids on some exports) are not fed. The output used is "last_hidden_state" (or the graph's only
/// [batch, seq, hidden] output) — never BERT's pooler output, which some exports also carry.
/// </summary>
public sealed class OnnxSentenceEncoder : IInstanceEncoder, IDisposable
{
    private readonly InferenceSession _session;
    private readonly WordPieceTokenizer _tokenizer;
    private readonly OnnxEncoderConfig _config;
    private readonly string _output;
    private readonly bool _feedTokenTypes;
    private readonly object _run = new();

    public string Name { get; }
    public int Dim { get; }
    public int MaxTokens => _config.MaxTokens;
    /// <summary>"cpu" or "cuda:N": where the session actually runs.</summary>
    public string Device { get; }

    private OnnxSentenceEncoder(string name, InferenceSession session, string device, WordPieceTokenizer tokenizer, OnnxEncoderConfig config)
    {
        Name = name;
        _session = session;
        Device = device;
        _tokenizer = tokenizer;
        _config = config;
        foreach (string required in new[] { "input_ids", "attention_mask" })
            if (!session.InputMetadata.ContainsKey(required))
                throw new InvalidOperationException($"encoder '{name}': model.onnx has no '{required}' input");
        _feedTokenTypes = session.InputMetadata.ContainsKey("token_type_ids");
        _output = HiddenStateOutput(session, name);
        Dim = session.OutputMetadata[_output].Dimensions[^1];
        if (Dim <= 0) Dim = ProbeDim();
    }

    /// <summary>Loads the encoder in <paramref name="directory"/>.</summary>
    public static OnnxSentenceEncoder Load(string name, string directory, OnnxEncoderSettings settings, Action<string>? warn = null)
    {
        string model = Path.Combine(directory, "model.onnx");
        if (!File.Exists(model)) throw new FileNotFoundException($"encoder '{name}': {model} not found");
        string vocab = File.Exists(Path.Combine(directory, "vocab.txt"))
            ? Path.Combine(directory, "vocab.txt")
            : Path.Combine(directory, "tokenizer.json");
        if (!File.Exists(vocab)) throw new FileNotFoundException($"encoder '{name}': no vocab.txt or tokenizer.json in {directory}");
        OnnxEncoderConfig config = OnnxEncoderConfig.Load(directory);
        WordPieceTokenizer tokenizer = WordPieceTokenizer.Load(vocab);
        if (config.Lowercase is bool lower) tokenizer = tokenizer.WithLowercase(lower);
        var (session, device) = OnnxSessions.Create(model, settings, warn);
        return new OnnxSentenceEncoder(name, session, device, tokenizer, config);
    }

    public int[] Tokenize(string text) => _tokenizer.Encode(InstanceText.Sanitize(text), _config.MaxTokens);

    /// <summary>Encodes each text into one row of <paramref name="output"/> [texts, Dim], as one padded batch.</summary>
    public void Encode(IReadOnlyList<string> texts, Span<float> output, CancellationToken cancel = default)
    {
        if (output.Length < texts.Count * Dim) throw new ArgumentException("output too small");
        if (texts.Count == 0) return;
        int[][] ids = texts.Select(Tokenize).ToArray();
        int batch = ids.Length, length = ids.Max(t => t.Length);
        var inputIds = new DenseTensor<long>(new[] { batch, length });
        var mask = new DenseTensor<long>(new[] { batch, length });
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < ids[b].Length; t++)
            {
                inputIds[b, t] = ids[b][t];
                mask[b, t] = 1;
            }
        }
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", inputIds),
            NamedOnnxValue.CreateFromTensor("attention_mask", mask),
        };
        if (_feedTokenTypes) inputs.Add(NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(new[] { batch, length })));
        cancel.ThrowIfCancellationRequested();
        using IDisposableReadOnlyCollection<DisposableNamedOnnxValue> results = Run(inputs);
        ReadOnlySpan<float> hidden = ((DenseTensor<float>)results.First(r => r.Name == _output).AsTensor<float>()).Buffer.Span;
        for (int b = 0; b < batch; b++) Pool(hidden.Slice(b * length * Dim, length * Dim), ids[b].Length, output.Slice(b * Dim, Dim));
    }

    /// <summary>[length, Dim] token states of one row → its vector (mean over the first n, first, or n-th token).</summary>
    private void Pool(ReadOnlySpan<float> states, int n, Span<float> row)
    {
        switch (_config.PoolingMode)
        {
            case EncoderPooling.Cls:
                states[..Dim].CopyTo(row);
                break;
            case EncoderPooling.LastToken:
                states.Slice((n - 1) * Dim, Dim).CopyTo(row);
                break;
            default:
                row.Clear();
                for (int t = 0; t < n; t++) TensorPrimitives.Add(row, states.Slice(t * Dim, Dim), row);
                TensorPrimitives.Divide(row, n, row);
                break;
        }
        if (!_config.Normalize) return;
        float norm = TensorPrimitives.Norm(row);
        TensorPrimitives.Divide(row, Math.Max(norm, 1e-12f), row);
    }

    /// <summary>One run at a time per session: ORT's own threads parallelise inside a run.</summary>
    private IDisposableReadOnlyCollection<DisposableNamedOnnxValue> Run(List<NamedOnnxValue> inputs)
    {
        lock (_run) return _session.Run(inputs, new[] { _output });
    }

    private static string HiddenStateOutput(InferenceSession session, string name)
    {
        if (session.OutputMetadata.ContainsKey("last_hidden_state")) return "last_hidden_state";
        string[] rank3 = session.OutputMetadata.Where(o => o.Value.Dimensions.Length == 3).Select(o => o.Key).ToArray();
        return rank3.Length == 1 ? rank3[0]
            : throw new InvalidOperationException($"encoder '{name}': model.onnx has no last_hidden_state and {rank3.Length} [batch, seq, hidden] outputs");
    }

    private int ProbeDim()
    {
        var ids = new DenseTensor<long>(new long[] { _tokenizer.ClsId, _tokenizer.SepId }, new[] { 1, 2 });
        var mask = new DenseTensor<long>(new long[] { 1, 1 }, new[] { 1, 2 });
        var inputs = new List<NamedOnnxValue> { NamedOnnxValue.CreateFromTensor("input_ids", ids), NamedOnnxValue.CreateFromTensor("attention_mask", mask) };
        if (_feedTokenTypes) inputs.Add(NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(new[] { 1, 2 })));
        using var results = Run(inputs);
        return results.First().AsTensor<float>().Dimensions[^1];
    }

    public void Dispose() => _session.Dispose();
}
