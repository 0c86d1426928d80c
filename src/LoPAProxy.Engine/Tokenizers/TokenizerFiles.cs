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
        tokenizerPath ??= FindBeside(modelPath, vocabSize);
        return tokenizerPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase)
            ? HfBpeTokenizer.Load(tokenizerPath)
            : new SentencePieceBpeTokenizer(Llama2cTokenizerFile.Load(tokenizerPath, vocabSize));
    }

    /// <summary>The tokenizer file beside a model: tokenizer.json (unless <paramref name="sentencePieceOnly"/>), then
    /// tok&lt;vocab&gt;.bin and tokenizer.bin.</summary>
    public static string FindBeside(string modelPath, int vocabSize, bool sentencePieceOnly = false)
    {
        string dir = Directory.Exists(modelPath) ? modelPath : Path.GetDirectoryName(Path.GetFullPath(modelPath))!;
        var candidates = new List<string>
        {
            Path.Combine(dir, $"tok{vocabSize}.bin"),
            Path.Combine(dir, "tokenizer.bin"),
        };
        if (!sentencePieceOnly) candidates.Insert(0, Path.Combine(dir, "tokenizer.json"));
        return candidates.FirstOrDefault(File.Exists) ?? throw new FileNotFoundException(
            $"no tokenizer beside {modelPath}: expected {string.Join(", ", candidates.Select(Path.GetFileName))} " +
            "(or pass one explicitly)");
    }
}
