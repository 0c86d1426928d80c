using System.Text.Json;
using LoPAProxy.Engine.Kernels;
using LoPAProxy.Engine.Networks.Bert;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Core.Encoders;

public enum BertPooling { Mean, Cls }

/// <summary>
/// "bert": a BERT-family encoder in the Hugging Face / sentence-transformers layout (config.json,
/// model.safetensors, vocab.txt or tokenizer.json). Pooling and normalisation come from sentence-transformers'
/// 1_Pooling/config.json and modules.json when present (default: mean pooling, no normalisation), or are given.
/// Instances are cut to the model's max_position_embeddings ([CLS] … [SEP] included).
/// </summary>
public sealed class BertEncoder(BertModel model, WordPieceTokenizer tokenizer, BertPooling pooling, bool normalize) : IInstanceEncoder
{
    public const string EncoderName = "bert";

    public string Name => EncoderName;
    public int Dim => model.Hidden;
    public int MaxTokens => model.MaxPositions;
    public BertPooling Pooling => pooling;
    public bool Normalize => normalize;

    public static BertEncoder Load(string directory, BertPooling? pooling = null, bool? normalize = null)
    {
        BertModel model = BertModel.Load(directory);
        string tokenizerPath = File.Exists(Path.Combine(directory, "tokenizer.json")) ? Path.Combine(directory, "tokenizer.json") : Path.Combine(directory, "vocab.txt");
        var tokenizer = WordPieceTokenizer.Load(tokenizerPath);
        BertPooling p = BertPooling.Mean;
        bool n = false;
        string poolingConfig = Path.Combine(directory, "1_Pooling", "config.json");
        if (File.Exists(poolingConfig))
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(poolingConfig));
            if (doc.RootElement.TryGetProperty("pooling_mode_cls_token", out var cls) && cls.ValueKind == JsonValueKind.True) p = BertPooling.Cls;
        }
        string modules = Path.Combine(directory, "modules.json");
        if (File.Exists(modules)) n = File.ReadAllText(modules).Contains("sentence_transformers.models.Normalize", StringComparison.Ordinal);
        return new BertEncoder(model, tokenizer, pooling ?? p, normalize ?? n);
    }

    public int[] Tokenize(string text) => tokenizer.Encode(InstanceText.Sanitize(text), model.MaxPositions);

    public void Encode(IReadOnlyList<string> texts, Span<float> output, CancellationToken cancel = default)
    {
        int h = Dim;
        if (output.Length < texts.Count * h) throw new ArgumentException("output too small");
        for (int i = 0; i < texts.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            int[] ids = Tokenize(texts[i]);
            var hidden = new float[ids.Length * h];
            model.Forward(ids, hidden);
            Span<float> row = output.Slice(i * h, h);
            if (pooling == BertPooling.Cls) Engine.Kernels.Pooling.First(hidden, 1, ids.Length, h, row);
            else Engine.Kernels.Pooling.Mean(hidden, 1, ids.Length, h, new[] { ids.Length }, row);
            if (normalize) Engine.Kernels.Pooling.L2Normalize(row, h);
        }
    }
}
