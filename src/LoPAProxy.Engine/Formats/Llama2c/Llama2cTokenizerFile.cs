namespace LoPAProxy.Engine.Formats.Llama2c;

/// <summary>
/// llama2.c's tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length, bytes.
/// The count is not stored: run.c takes it from the model; without one, tokens are read to the end of the file.
/// </summary>
public sealed record Llama2cTokenizerFile(int MaxTokenLength, byte[][] Pieces, float[] Scores)
{
    public const int MaxVocab = 1 << 20, MaxPieceBytes = 1 << 16;

    public static Llama2cTokenizerFile Load(string path, int? vocabSize = null) => Parse(File.ReadAllBytes(path), path, vocabSize);

    public static Llama2cTokenizerFile Parse(ReadOnlySpan<byte> bytes, string file, int? vocabSize = null)
    {
        var r = new ByteReader(bytes, file);
        int maxLen = r.I32("max_token_length");
        if (maxLen <= 0 || maxLen > MaxPieceBytes) throw r.Error($"max_token_length {maxLen} is outside [1, {MaxPieceBytes}]");
        if (vocabSize is { } n && (n <= 0 || n > MaxVocab)) throw r.Error($"vocab size {n} is outside [1, {MaxVocab}]");
        var pieces = new List<byte[]>();
        var scores = new List<float>();
        while (vocabSize is { } count ? pieces.Count < count : r.Remaining > 0)
        {
            if (pieces.Count >= MaxVocab) throw r.Error($"more than {MaxVocab} tokens");
            float score = r.F32($"score of token {pieces.Count}");
            int len = r.I32($"length of token {pieces.Count}");
            if (len < 0 || len > maxLen) throw r.Error($"token {pieces.Count} has length {len}, outside [0, {maxLen}]");
            pieces.Add(r.Take(len, $"bytes of token {pieces.Count}").ToArray());
            scores.Add(score);
        }
        if (pieces.Count == 0) throw r.Error("no tokens");
        return new Llama2cTokenizerFile(maxLen, pieces.ToArray(), scores.ToArray());
    }
}
