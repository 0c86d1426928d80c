using System.Security.Cryptography;
using LoPAProxy.Engine.Formats.Gguf;
using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.ModelServer.Generation;

/// <summary>
/// Turns what an operator points the server at into a GGUF file llama.cpp loads: a .gguf as it is; a llama2.c
/// checkpoint (.bin, its tokenizer beside it) converted once into a cache keyed by the checkpoint's and tokenizer's
/// path, size and modification time. A Hugging Face directory is refused with the command that converts it
/// (llama.cpp's convert_hf_to_gguf.py).
/// </summary>
public static class ModelFiles
{
    public static string ResolveGguf(string path, string? tokenizerPath = null, string? cacheDirectory = null)
    {
        if (Directory.Exists(path))
        {
            throw new InvalidOperationException($"{path} is a directory: the model server runs GGUF files. Convert a " +
                "Hugging Face model with llama.cpp's convert_hf_to_gguf.py (see docs/model-server.md)");
        }

        if (!File.Exists(path)) throw new FileNotFoundException($"model not found: {path}");
        if (GgufFile.HasMagic(path)) return path;
        tokenizerPath ??= Llama2cTokenizerBeside(path);
        string key = Hash(path, tokenizerPath);
        string cache = cacheDirectory ?? DefaultCache();
        Directory.CreateDirectory(cache);
        string target = Path.Combine(cache, $"{Path.GetFileNameWithoutExtension(path)}-{key}.gguf");
        if (!File.Exists(target)) Llama2cToGguf.Convert(path, tokenizerPath, target);
        return target;
    }

    /// <summary>tok&lt;vocab&gt;.bin, then tokenizer.bin, beside a llama2.c checkpoint.</summary>
    public static string Llama2cTokenizerBeside(string checkpoint)
    {
        var (config, _) = Llama2cCheckpoint.ReadHeader(checkpoint);
        return TokenizerFiles.FindBeside(checkpoint, config.VocabSize, sentencePieceOnly: true);
    }

    private static string DefaultCache() => Path.Combine(Environment.GetFolderPath(
        Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "lopa", "models");

    /// <summary>A key for the files' identity: full path, length and last write time of each. Reading a multi-GB
    /// checkpoint on every start to hash its bytes would cost more than the conversion it saves.</summary>
    private static string Hash(params string[] files)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (string file in files)
        {
            var info = new FileInfo(file);
            string identity = $"{info.FullName}|{info.Length}|{info.LastWriteTimeUtc.Ticks}\n";
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes(identity));
        }
        return Convert.ToHexString(sha.GetHashAndReset())[..16].ToLowerInvariant();
    }
}
