using System.Numerics.Tensors;
using LoPAProxy.Engine.Tokenizers;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace LoPAProxy.Core.Encoders.Onnx;

/// <summary>
/// A sentence encoder exported to ONNX (sentence-transformers layout): a directory with model.onnx, its tokenizer —
/// WordPiece (vocab.txt, or a tokenizer.json whose model is WordPiece) or byte-level BPE (tokenizer.json) — and
/// optionally encoder.json (pooling, normalisation, max tokens, BOS/EOS for BPE). Runs on ONNX Runtime, CPU or CUDA
/// (<see cref="OnnxEncoderSettings"/>). The tokenizers are this project's: its WordPiece equals Hugging Face's where
/// Microsoft.ML.Tokenizers' BertTokenizer does not (DESIGN §4; OnnxEncoderTests check it against HF's tokenizers in
/// JS on the real MiniLM vocabulary), and its byte-level BPE equals HF's on the real Llama-3 tokenizer.json
/// (HfBpeTokenizerTests).
///
/// A batch is padded to its longest instance with attention mask 0, so a row's vector does not depend on its
/// batch-mates beyond float rounding (measured ≤ 1e-6; OnnxEncoderTests). Inputs the graph does not declare
/// (token_type_ids on some exports) are not fed. The output used is "last_hidden_state" (or the graph's only
/// [batch, seq, hidden] output) — never BERT's pooler output, which some exports also carry.
/// </summary>
public sealed class OnnxSentenceEncoder : IInstanceEncoder, IDisposable
{
    private readonly InferenceSession _session;
    private readonly Func<string, int, int[]> _tokenize;
    private readonly OnnxEncoderConfig _config;
    private readonly string _output;
    private readonly bool _feedTokenTypes;
    private readonly object _run = new();

    public string Name { get; }
    public int Dim { get; }
    public int MaxTokens => _config.MaxTokens;
    /// <summary>"cpu" or "cuda:N": where the session actually runs.</summary>
    public string Device { get; }

    private OnnxSentenceEncoder(string name, InferenceSession session, string device, Func<string, int, int[]> tokenize,
        OnnxEncoderConfig config)
    {
        Name = name;
        _session = session;
        Device = device;
        _tokenize = tokenize;
        _config = config;
        foreach (string required in new[] { "input_ids", "attention_mask" })
        {
            if (!session.InputMetadata.ContainsKey(required))
                throw new InvalidOperationException($"encoder '{name}': model.onnx has no '{required}' input");
        }

        _feedTokenTypes = session.InputMetadata.ContainsKey("token_type_ids");
        _output = HiddenStateOutput(session, name);
        Dim = session.OutputMetadata[_output].Dimensions[^1];
        if (Dim <= 0) Dim = ProbeDim();
    }

    /// <summary>Loads the encoder in <paramref name="directory"/>.</summary>
    public static OnnxSentenceEncoder Load(string name, string directory, OnnxEncoderSettings settings,
        Action<string>? warn = null)
    {
        string model = Path.Combine(directory, "model.onnx");
        if (!File.Exists(model)) throw new FileNotFoundException($"encoder '{name}': {model} not found");
        OnnxEncoderConfig config = OnnxEncoderConfig.Load(directory);
        Func<string, int, int[]> tokenize = TokenizerFor(name, directory, config);
        var (session, device) = OnnxSessions.Create(model, settings, warn);
        return new OnnxSentenceEncoder(name, session, device, tokenize, config);
    }

    /// <summary>vocab.txt or a WordPiece tokenizer.json → WordPiece; a BPE tokenizer.json → byte-level BPE.</summary>
    private static Func<string, int, int[]> TokenizerFor(string name, string directory, OnnxEncoderConfig config)
    {
        string vocab = Path.Combine(directory, "vocab.txt"), json = Path.Combine(directory, "tokenizer.json");
        if (!File.Exists(vocab) && !File.Exists(json))
            throw new FileNotFoundException($"encoder '{name}': no vocab.txt or tokenizer.json in {directory}");
        if (File.Exists(vocab) || IsWordPiece(json))
        {
            WordPieceTokenizer wordPiece = WordPieceTokenizer.Load(File.Exists(vocab) ? vocab : json);
            if (config.Lowercase is bool lower) wordPiece = wordPiece.WithLowercase(lower);
            return wordPiece.Encode;
        }
        HfBpeTokenizer bpe = HfBpeTokenizer.Load(json);
        return (text, max) =>
            CutKeepingEos(NonEmpty(bpe.Encode(text, config.AddBos, config.AddEos), bpe.EosId), max, config.AddEos);
    }

    /// <summary>At least one token, so every row has a position to pool.</summary>
    private static int[] NonEmpty(int[] ids, int fallback) => ids.Length > 0 ? ids : [fallback];

    private static bool IsWordPiece(string tokenizerJson)
    {
        using var stream = File.OpenRead(tokenizerJson);
        using var doc = System.Text.Json.JsonDocument.Parse(stream);
        return doc.RootElement.TryGetProperty("model", out var model)
            && model.TryGetProperty("type", out var type) && type.GetString() == "WordPiece";
    }

    /// <summary>The first <paramref name="max"/> ids; an appended EOS stays last, as WordPiece keeps its
    /// [SEP].</summary>
    private static int[] CutKeepingEos(int[] ids, int max, bool eos)
    {
        if (ids.Length <= max) return ids;
        int[] cut = ids[..max];
        if (eos) cut[^1] = ids[^1];
        return cut;
    }

    public int[] Tokenize(string text) => _tokenize(InstanceText.Sanitize(text), _config.MaxTokens);

    public int CountTokens(string text) => Tokenize(InstanceText.Bound(text, MaxTokens)).Length;

    /// <summary>Encodes each text into one row of <paramref name="output"/> [texts, Dim], as one padded
    /// batch.</summary>
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
        if (_feedTokenTypes) inputs.Add(ZeroTokenTypes(batch, length));
        cancel.ThrowIfCancellationRequested();
        using IDisposableReadOnlyCollection<DisposableNamedOnnxValue> results = Run(inputs, batch * length);
        ReadOnlySpan<float> hidden = ((DenseTensor<float>)results.First(r =>
            r.Name == _output).AsTensor<float>()).Buffer.Span;
        for (int b = 0; b < batch; b++)
            Pool(hidden.Slice(b * length * Dim, length * Dim), ids[b].Length, output.Slice(b * Dim, Dim));
    }

    /// <summary>[length, Dim] token states of one row → its vector (mean over the first n, first, or n-th
    /// token).</summary>
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
    /// <summary>
    /// Padded batches above this many tokens give ONNX Runtime's CPU arena back at the end of their run: the arena
    /// otherwise keeps the largest batch's activations for the life of the process (a 256-text inspection of long
    /// texts left ~460 MiB behind). Serving batches (tens of short instances) stay below it and keep the arena warm.
    /// </summary>
    public const int ShrinkArenaAboveTokens = 4096;

    private static readonly RunOptions Keep = new(), Shrink = ShrinkingRunOptions();

    private static RunOptions ShrinkingRunOptions()
    {
        var options = new RunOptions();
        options.AddRunConfigEntry("memory.enable_memory_arena_shrinkage", "cpu:0");
        return options;
    }

    private IDisposableReadOnlyCollection<DisposableNamedOnnxValue> Run(List<NamedOnnxValue> inputs, int tokens)
    {
        RunOptions options = tokens > ShrinkArenaAboveTokens && Device == "cpu" ? Shrink : Keep;
        lock (_run) return _session.Run(inputs, new[] { _output }, options);
    }

    private static string HiddenStateOutput(InferenceSession session, string name)
    {
        if (session.OutputMetadata.ContainsKey("last_hidden_state")) return "last_hidden_state";
        string[] rank3 = session.OutputMetadata.Where(o => o.Value.Dimensions.Length == 3).Select(o => o.Key).ToArray();
        return rank3.Length == 1 ? rank3[0]
            : throw new InvalidOperationException(
                $"encoder '{name}': model.onnx has no last_hidden_state and {rank3.Length} [batch, seq, hidden] outputs");
    }

    private int ProbeDim()
    {
        long[] probe = Tokenize("probe").Select(t => (long)t).ToArray();
        var ids = new DenseTensor<long>(probe, new[] { 1, probe.Length });
        var mask = new DenseTensor<long>(probe.Select(_ => 1L).ToArray(), new[] { 1, probe.Length });
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", ids), NamedOnnxValue.CreateFromTensor("attention_mask", mask),
        };
        if (_feedTokenTypes) inputs.Add(ZeroTokenTypes(1, probe.Length));
        using var results = Run(inputs, probe.Length);
        return results[0].AsTensor<float>().Dimensions[^1];
    }

    /// <summary>Segment ids: every token is in the first (only) segment.</summary>
    private static NamedOnnxValue ZeroTokenTypes(int batch, int length) =>
        NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(new[] { batch, length }));

    public void Dispose() => _session.Dispose();
}
