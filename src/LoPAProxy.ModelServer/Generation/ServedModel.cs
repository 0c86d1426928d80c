using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;

namespace LoPAProxy.ModelServer.Generation;

/// <summary>
/// The GGUF model this server serves, loaded by llama.cpp (through LLamaSharp): its name, context length per
/// sequence, hidden size, tokenizer and the tokens that end a generation. One llama.cpp context per server decodes
/// every sequence (see <see cref="BatchDecoder"/>).
/// </summary>
public sealed class ServedModel : IDisposable
{
    private readonly LLamaWeights _weights;
    private readonly Lazy<TokenPiece[]> _pieces;

    public string Name { get; }
    public string GgufPath { get; }
    /// <summary>Positions one sequence may use (prompt + completion).</summary>
    public int ContextLength { get; }
    public int HiddenSize => _weights.EmbeddingSize;
    public int VocabSize => _weights.Vocab.Count;
    /// <summary>End-of-generation tokens, and BOS: llama2.c's run.c ends a story when the model predicts BOS.</summary>
    public IReadOnlySet<int> StopTokens { get; }
    /// <summary>The chat template in the GGUF metadata (tokenizer.chat_template), if any.</summary>
    public string? ChatTemplate { get; }
    internal LLamaWeights Weights => _weights;
    internal bool AddBos => _weights.Vocab.ShouldAddBOS;
    /// <summary>The BOS token (the whole prompt of an unconditioned generation), or 1 when the model has
    /// none.</summary>
    public int BosToken => _weights.Vocab.BOS is { } bos ? (int)bos : 1;

    private ServedModel(string name, string path, LLamaWeights weights, int contextLength)
    {
        Name = name;
        GgufPath = path;
        _weights = weights;
        ContextLength = contextLength;
        var stops = new HashSet<int>();
        for (int t = 0; t < weights.Vocab.Count; t++)
        {
            if (((LLamaToken)t).IsEndOfGeneration(weights.Vocab)) stops.Add(t);
        }
        if (weights.Vocab.BOS is { } bos) stops.Add((int)bos);
        StopTokens = stops;
        ChatTemplate = weights.Metadata.GetValueOrDefault("tokenizer.chat_template");
        _pieces = new Lazy<TokenPiece[]>(ReadPieces);
    }

    /// <summary>Loads a GGUF file, or converts a llama2.c checkpoint first (<see cref="ModelFiles"/>).</summary>
    public static ServedModel Load(ModelServerOptions options)
    {
        LlamaCppRuntime.Initialise();
        string gguf = ModelFiles.ResolveGguf(options.ModelPath, options.TokenizerPath, options.ModelCacheDirectory);
        var parameters = new ModelParams(gguf) { GpuLayerCount = 0 };
        LLamaWeights weights = LLamaWeights.LoadFromFile(parameters);
        int context = options.ContextLength ?? weights.ContextSize;
        string name = options.ModelName
            ?? Path.GetFileNameWithoutExtension(Path.TrimEndingDirectorySeparator(options.ModelPath));
        return new ServedModel(name, gguf, weights, context);
    }

    /// <summary>Token ids of <paramref name="text"/>; <paramref name="special"/> parses control tokens written as text
    /// (a chat template's), which user text must never do.</summary>
    public int[] Tokenize(string text, bool addBos, bool special = false)
    {
        LLamaToken[] tokens = _weights.Tokenize(text, addBos && AddBos, special, Encoding.UTF8);
        return Array.ConvertAll(tokens, t => (int)t);
    }

    /// <summary>
    /// Tokens of text that continues a prompt after something else (an embeddings part). llama.cpp's SentencePiece
    /// tokenizer puts its dummy-prefix space before every text fragment; for text that already starts with a space,
    /// that space is given to the prefix, so " a red kite" continues exactly as it would inside one text. Text that
    /// does not start with a space gets the prefix, as llama.cpp gives it after a control token.
    /// </summary>
    public int[] TokenizeContinuation(string text, bool special = false)
    {
        if (text.Length == 0) return Array.Empty<int>();
        bool prefixes = _weights.Vocab.Type == LLamaVocabType.SentencePiece
            && _weights.Metadata.GetValueOrDefault("tokenizer.ggml.add_space_prefix") != "false";
        return Tokenize(prefixes && text[0] == ' ' ? text[1..] : text, addBos: false, special);
    }

    /// <summary>A decoder of tokens to text that holds back incomplete UTF-8 characters.</summary>
    internal StreamingTokenDecoder NewTextDecoder() => new(Encoding.UTF8, _weights);

    /// <summary>The bytes one token writes on its own (control tokens as their text, "&lt;/s&gt;"), as logprobs
    /// show it.</summary>
    public byte[] TokenBytes(int token) => _pieces.Value[token].Bytes;

    /// <summary>A token as logprobs name it: the text of its bytes, or, when they are not whole UTF-8 characters (a
    /// SentencePiece byte token), <c>bytes:\xNN…</c> as OpenAI writes it.</summary>
    public string TokenText(int token) => _pieces.Value[token].Text;

    private readonly record struct TokenPiece(byte[] Bytes, string Text);

    /// <summary>Every token's bytes and text, once (logprobs name tokens and alternatives on every step).</summary>
    private TokenPiece[] ReadPieces()
    {
        var pieces = new TokenPiece[VocabSize];
        Span<byte> buffer = stackalloc byte[256];
        for (int t = 0; t < pieces.Length; t++)
        {
            uint length = _weights.NativeHandle.TokenToSpan((LLamaToken)t, buffer, 0, special: true);
            byte[] bytes = buffer[..(int)Math.Min(length, (uint)buffer.Length)].ToArray();
            string text = System.Text.Unicode.Utf8.IsValid(bytes)
                ? Encoding.UTF8.GetString(bytes)
                : "bytes:" + string.Concat(bytes.Select(b => $"\\x{b:x2}"));
            pieces[t] = new TokenPiece(bytes, text);
        }
        return pieces;
    }

    public string Decode(IEnumerable<int> tokens)
    {
        StreamingTokenDecoder decoder = NewTextDecoder();
        foreach (int t in tokens) decoder.Add(t);
        return decoder.Read();
    }

    public void Dispose() => _weights.Dispose();
}
