using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Training;

/// <summary>
/// The frozen foundation model a trainer reads: its float32 weights (llama2.c checkpoint or Hugging Face Llama
/// directory) and the tokenizer beside them, named after the file or directory.
/// </summary>
public sealed record BaseModel(string Name, LlamaModel Weights, ITokenizer Tokenizer)
{
    public static BaseModel Load(string path, string? tokenizerPath = null)
    {
        LlamaModel weights;
        if (Directory.Exists(path)) weights = LlamaModel.FromHuggingFace(path);
        else if (File.Exists(path)) weights = LlamaModel.FromLlama2c(Llama2cCheckpoint.Load(path));
        else throw new FileNotFoundException($"model not found: {path}");
        ITokenizer tokenizer = TokenizerFiles.ForModel(path, weights.Config.VocabSize, tokenizerPath);
        string name = Path.GetFileNameWithoutExtension(Path.TrimEndingDirectorySeparator(path));
        return new BaseModel(name, weights, tokenizer);
    }
}
