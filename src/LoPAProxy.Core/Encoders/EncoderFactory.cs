using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Core.Encoders;

/// <summary>Where encoders find their files. Unset paths fall back to the environment, then to known locations.</summary>
public sealed record EncoderOptions
{
    /// <summary>USE-lite's dist/ folder (model.json, shards, vocab.json). Env: LOPA_USE_LITE_DIR.</summary>
    public string? UseLiteDirectory { get; init; }
    /// <summary>A sentence-transformers / HF BERT directory. Env: LOPA_BERT_DIR.</summary>
    public string? BertDirectory { get; init; }
    /// <summary>The foundation model (llama2.c .bin or HF directory) whose embedding rows fm-mean averages. Env: LOPA_FM_MODEL.</summary>
    public string? FoundationModel { get; init; }
}

/// <summary>Creates instance encoders by name: "use-lite", "bert", "fm-mean".</summary>
public static class EncoderFactory
{
    public static readonly string[] Names = { UseLiteEncoder.EncoderName, BertEncoder.EncoderName, FmMeanEncoder.EncoderName };

    /// <summary>USE-lite's output size, known without loading it.</summary>
    public static int? KnownDim(string name) => name == UseLiteEncoder.EncoderName ? 512 : null;

    public static IInstanceEncoder Create(string name, EncoderOptions options) => name switch
    {
        UseLiteEncoder.EncoderName => UseLiteEncoder.Load(UseLiteDirectory(options)),
        BertEncoder.EncoderName => BertEncoder.Load(options.BertDirectory ?? Environment.GetEnvironmentVariable("LOPA_BERT_DIR")
            ?? throw new InvalidOperationException("the bert encoder needs a model directory (--encoder-dir or LOPA_BERT_DIR)")),
        FmMeanEncoder.EncoderName => FmMean(options.FoundationModel ?? Environment.GetEnvironmentVariable("LOPA_FM_MODEL")
            ?? throw new InvalidOperationException("the fm-mean encoder needs the foundation model (--model or LOPA_FM_MODEL)")),
        _ => throw new InvalidOperationException($"unknown encoder '{name}' ({string.Join(", ", Names)})"),
    };

    /// <summary>The option, LOPA_USE_LITE_DIR, the project's fetched copy (.cache/use-lite), or the test peers' npm copy.</summary>
    public static string UseLiteDirectory(EncoderOptions options)
    {
        string? explicitDir = options.UseLiteDirectory ?? Environment.GetEnvironmentVariable("LOPA_USE_LITE_DIR");
        if (explicitDir != null) return explicitDir;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            foreach (string candidate in new[] { Path.Combine(d.FullName, ".cache", "use-lite", "package", "dist"),
                         Path.Combine(d.FullName, "tests", "node", "node_modules", "@energetic-ai", "model-embeddings-en", "dist") })
                if (File.Exists(Path.Combine(candidate, "model.json"))) return candidate;
        throw new DirectoryNotFoundException("USE-lite weights not found: run scripts/fetch-use-lite.sh, or set LOPA_USE_LITE_DIR / --encoder-dir");
    }

    private static FmMeanEncoder FmMean(string modelPath)
    {
        LlamaModel model = Directory.Exists(modelPath) ? LlamaModel.FromHuggingFace(modelPath) : LlamaModel.FromLlama2c(Llama2cCheckpoint.Load(modelPath));
        return new FmMeanEncoder(TokenizerFiles.ForModel(modelPath, model.Config.VocabSize), model.TokenEmbedding, model.Config.Dim);
    }
}
