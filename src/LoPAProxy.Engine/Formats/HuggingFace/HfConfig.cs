using System.Text.Json;

namespace LoPAProxy.Engine.Formats.HuggingFace;

/// <summary>
/// The fields of a Hugging Face config.json that Llama- and BERT-family models need, type-checked.
/// Missing optional fields are null; <see cref="Raw"/> keeps the whole document for anything else.
/// </summary>
public sealed record HfConfig(
    string ModelType,
    int HiddenSize,
    int NumHiddenLayers,
    int NumAttentionHeads,
    int NumKeyValueHeads,
    int IntermediateSize,
    int VocabSize,
    int? MaxPositionEmbeddings,
    double? RmsNormEps,
    double? LayerNormEps,
    double RopeTheta,
    bool TieWordEmbeddings,
    string? HiddenAct,
    int? TypeVocabSize,
    int? HeadDim,
    string? TorchDtype,
    JsonElement Raw)
{
    public const int MaxBytes = 1 << 20;

    public static HfConfig Load(string path)
    {
        var info = new FileInfo(path);
        if (info.Length > MaxBytes) throw new TensorFileException(path, $"config of {info.Length} bytes exceeds the {MaxBytes}-byte limit");
        return Parse(File.ReadAllText(path), path);
    }

    public static HfConfig Parse(string json, string file)
    {
        JsonElement root;
        try { using var doc = JsonDocument.Parse(json, StrictJson.Options(32)); root = doc.RootElement.Clone(); }
        catch (JsonException e) { throw new TensorFileException(file, $"not valid JSON: {e.Message}"); }
        if (root.ValueKind != JsonValueKind.Object) throw new TensorFileException(file, "config is not a JSON object");

        int Req(string key) => Int(root, key, file) ?? throw new TensorFileException(file, $"missing required integer '{key}'");
        int hidden = Req("hidden_size"), layers = Req("num_hidden_layers"), heads = Req("num_attention_heads");
        int kvHeads = Int(root, "num_key_value_heads", file) ?? heads;
        int inter = Req("intermediate_size"), vocab = Req("vocab_size");
        if (hidden % heads != 0 && Int(root, "head_dim", file) == null) throw new TensorFileException(file, $"hidden_size {hidden} is not a multiple of num_attention_heads {heads}");
        if (heads % kvHeads != 0) throw new TensorFileException(file, $"num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}");
        return new HfConfig(
            Str(root, "model_type", file) ?? throw new TensorFileException(file, "missing 'model_type'"),
            hidden, layers, heads, kvHeads, inter, vocab,
            Int(root, "max_position_embeddings", file),
            Num(root, "rms_norm_eps", file),
            Num(root, "layer_norm_eps", file),
            Num(root, "rope_theta", file) ?? 10000.0,
            Bool(root, "tie_word_embeddings", file) ?? false,
            Str(root, "hidden_act", file),
            Int(root, "type_vocab_size", file),
            Int(root, "head_dim", file),
            Str(root, "torch_dtype", file),
            root);
    }

    private static int? Int(JsonElement o, string key, string file)
    {
        if (!o.TryGetProperty(key, out JsonElement v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i)) throw new TensorFileException(file, $"'{key}' is not an integer");
        if (i <= 0) throw new TensorFileException(file, $"'{key}' must be positive, not {i}");
        return i;
    }

    private static double? Num(JsonElement o, string key, string file)
    {
        if (!o.TryGetProperty(key, out JsonElement v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number) throw new TensorFileException(file, $"'{key}' is not a number");
        double d = v.GetDouble();
        if (!double.IsFinite(d) || d <= 0) throw new TensorFileException(file, $"'{key}' must be a positive finite number");
        return d;
    }

    private static string? Str(JsonElement o, string key, string file)
    {
        if (!o.TryGetProperty(key, out JsonElement v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw new TensorFileException(file, $"'{key}' is not a string");
    }

    private static bool? Bool(JsonElement o, string key, string file)
    {
        if (!o.TryGetProperty(key, out JsonElement v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => throw new TensorFileException(file, $"'{key}' is not a boolean") };
    }
}
