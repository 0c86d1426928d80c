using LoPAProxy.Engine.Formats.Llama2c;

namespace LoPAProxy.Engine.Tokenizers;

/// <summary>Finds and loads the tokenizer that belongs to a model file or directory.</summary>
public static class TokenizerFiles
{
    /// <summary>
    /// The explicit path, else beside the model: tokenizer.json (Hugging Face byte-level BPE), then
    /// tok&lt;vocab&gt;.bin and tokenizer.bin (llama2.c SentencePiece).
    /// </summary>
    public static ITokenizer ForModel(string modelPath, int vocabSize, string? tokenizerPath = null)
    {
        string dir = Directory.Exists(modelPath) ? modelPath : Path.GetDirectoryName(Path.GetFullPath(modelPath))!;
        tokenizerPath ??= new[] { Path.Combine(dir, "tokenizer.json"), Path.Combine(dir, $"tok{vocabSize}.bin"), Path.Combine(dir, "tokenizer.bin") }.FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException($"no tokenizer beside {modelPath}: expected tokenizer.json, tok{vocabSize}.bin or tokenizer.bin (or pass one explicitly)");
        return tokenizerPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase)
            ? HfBpeTokenizer.Load(tokenizerPath)
            : new SentencePieceBpeTokenizer(Llama2cTokenizerFile.Load(tokenizerPath, vocabSize));
    }
}
