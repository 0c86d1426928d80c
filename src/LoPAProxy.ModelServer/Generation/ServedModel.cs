using LoPAProxy.Engine.Formats;
using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.ModelServer.Generation;

/// <summary>The model this server serves: decoder, tokenizer, name, and the tokens that end a sequence.</summary>
public sealed class ServedModel
{
    public string Name { get; }
    public LlamaModel Model { get; }
    public ITokenizer Tokenizer { get; }
    public LlamaGenerator Generator { get; }
    public IReadOnlySet<int> StopTokens { get; }
    public int ContextLength => Model.Config.MaxSeqLen;
    public int HiddenSize => Model.Config.Dim;

    public ServedModel(string name, LlamaModel model, ITokenizer tokenizer)
    {
        if (tokenizer.VocabSize > model.Config.VocabSize)
            throw new InvalidOperationException($"tokenizer has {tokenizer.VocabSize} tokens, more than the model's {model.Config.VocabSize}");
        Name = name; Model = model; Tokenizer = tokenizer;
        Generator = new LlamaGenerator(model);
        StopTokens = new[] { tokenizer.BosId, tokenizer.EosId }.Where(t => t >= 0).ToHashSet(); // run.c ends at BOS; EOS ends too
    }

    /// <summary>
    /// A llama2.c .bin or a Hugging Face Llama directory. Tokenizer: the explicit path, else tokenizer.json
    /// (Hugging Face byte-level BPE) or tok&lt;vocab&gt;.bin / tokenizer.bin (llama2.c SentencePiece) beside the model.
    /// </summary>
    public static ServedModel Load(string path, string? tokenizerPath = null, string? name = null)
    {
        LlamaModel model;
        if (Directory.Exists(path)) model = LlamaModel.FromHuggingFace(path);
        else if (File.Exists(path)) model = LlamaModel.FromLlama2c(Llama2cCheckpoint.Load(path));
        else throw new FileNotFoundException($"model not found: {path}");
        ITokenizer tokenizer = TokenizerFiles.ForModel(path, model.Config.VocabSize, tokenizerPath);
        name ??= Path.GetFileNameWithoutExtension(Path.TrimEndingDirectorySeparator(path));
        return new ServedModel(name, model, tokenizer);
    }
}
