using System.Security.Cryptography;
using LoPAProxy.Engine.Formats.Gguf;

namespace LoPAProxy.ModelServer.Generation;

/// <summary>
/// Turns what an operator points the server at into a GGUF file llama.cpp loads: a .gguf as it is; a llama2.c
/// checkpoint (.bin, its tokenizer beside it) converted once into a cache keyed by the checkpoint's and tokenizer's
/// bytes. A Hugging Face directory is refused with the command that converts it (llama.cpp's convert_hf_to_gguf.py).
/// </summary>
public static class ModelFiles
{
    public static string ResolveGguf(string path, string? tokenizerPath = null, string? cacheDirectory = null)
    {
        if (Directory.Exists(path))
            throw new InvalidOperationException($"{path} is a directory: the model server runs GGUF files. Convert a " +
                "Hugging Face model with llama.cpp's convert_hf_to_gguf.py (see docs/model-server.md)");
        if (!File.Exists(path)) throw new FileNotFoundException($"model not found: {path}");
        if (IsGguf(path)) return path;
        tokenizerPath ??= Llama2cTokenizerBeside(path);
        string key = Hash(path, tokenizerPath);
        string cache = cacheDirectory ?? DefaultCache();
        Directory.CreateDirectory(cache);
        string target = Path.Combine(cache, $"{Path.GetFileNameWithoutExtension(path)}-{key}.gguf");
        if (!File.Exists(target)) Llama2cToGguf.Convert(path, tokenizerPath, target);
        return target;
    }

    public static bool IsGguf(string path)
    {
        using var stream = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[4];
        return stream.Read(magic) == 4 && BitConverter.ToUInt32(magic) == GgufFile.Magic;
    }

    /// <summary>tok&lt;vocab&gt;.bin, then tokenizer.bin, beside a llama2.c checkpoint.</summary>
    public static string Llama2cTokenizerBeside(string checkpoint)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(checkpoint))!;
        using var stream = File.OpenRead(checkpoint);
        var header = new byte[28];
        stream.ReadExactly(header);
        int vocab = Math.Abs(BitConverter.ToInt32(header, 20));
        string[] candidates = { Path.Combine(directory, $"tok{vocab}.bin"), Path.Combine(directory, "tokenizer.bin") };
        return candidates.FirstOrDefault(File.Exists) ?? throw new FileNotFoundException(
            $"no tokenizer beside {checkpoint}: expected tok{vocab}.bin or tokenizer.bin (or pass --tokenizer)");
    }

    private static string DefaultCache() => Path.Combine(Environment.GetFolderPath(
        Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "lopa", "models");

    private static string Hash(params string[] files)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (string file in files) sha.AppendData(File.ReadAllBytes(file));
        return Convert.ToHexString(sha.GetHashAndReset())[..16].ToLowerInvariant();
    }
}
