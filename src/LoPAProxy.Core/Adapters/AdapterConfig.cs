using System.Text.Json;
using System.Text.Json.Nodes;

namespace LoPAProxy.Core.Adapters;

/// <summary>How Z is composed from the shared prompt Z_S and the instance part.</summary>
public enum Composition
{
    /// <summary>Z = Z_S ∘ σ(u·vᵀ) — LoPA.</summary>
    Lopa,
    /// <summary>Z = Z_S + u·vᵀ — the paper's additive ablation.</summary>
    LopaAdd,
    /// <summary>Z = Z_S — plain prompt tuning (also what a PEFT PROMPT_TUNING adapter is).</summary>
    PromptTuning,
    /// <summary>Z = reshape(W_up·tanh(W_down·x)) — IDPG, no shared part.</summary>
    Idpg,
}

/// <summary>adapter_config.json of a LoPA adapter (see docs/adapter-format.md).</summary>
public sealed record AdapterConfig
{
    public const string LopaType = "LOPA", PromptTuningType = "PROMPT_TUNING";
    public const int MaxVirtualTokens = 1024, MaxDim = 65536, MaxRank = 256, MaxPromptExample = 2_000;
    public const string PromptExampleKey = "prompt_example";

    public string PeftType { get; init; } = LopaType;
    public string? BaseModel { get; init; }
    /// <summary>m, soft-prompt rows.</summary>
    public int NumVirtualTokens { get; init; } = 10;
    /// <summary>d, the FM's hidden size.</summary>
    public int TokenDim { get; init; }
    /// <summary>r, the rank of u·vᵀ.</summary>
    public int Rank { get; init; } = 4;
    /// <summary>H, the heads' hidden width.</summary>
    public int HiddenSize { get; init; } = 256;
    /// <summary>The instance encoder's name; null for prompt tuning.</summary>
    public string? Encoder { get; init; }
    /// <summary>h, the encoder's output size.</summary>
    public int EncoderDim { get; init; }
    public Composition Composition { get; init; } = Composition.Lopa;
    /// <summary>Generation settings applied to requests that set none of their own; null: none.</summary>
    public GenerationDefaults? Defaults { get; init; }
    /// <summary>A request text in the format the adapter was trained on (the console's try-it starts from it); null:
    /// none.</summary>
    public string? PromptExample { get; init; }

    public bool UsesEncoder => Composition != Composition.PromptTuning;

    /// <summary>The paper's count: m·d + [h·H + H + H·m·r + m·r] + [h·H + H + H·d·r + d·r] for LoPA.</summary>
    public long TrainableParameters
    {
        get
        {
            long m = NumVirtualTokens, d = TokenDim, r = Rank, h = EncoderDim, hh = HiddenSize;
            return Composition switch
            {
                Composition.PromptTuning => m * d,
                Composition.Idpg => h * hh + hh + hh * m * d + m * d,
                _ => m * d + (h * hh + hh + hh * m * r + m * r) + (h * hh + hh + hh * d * r + d * r),
            };
        }
    }

    public static string CompositionName(Composition c) => c switch
    {
        Composition.Lopa => "lopa",
        Composition.LopaAdd => "lopa_add",
        Composition.PromptTuning => "prompt_tuning",
        _ => "idpg",
    };

    public static Composition ParseComposition(string s) => s switch
    {
        "lopa" => Composition.Lopa,
        "lopa_add" => Composition.LopaAdd,
        "prompt_tuning" => Composition.PromptTuning,
        "idpg" => Composition.Idpg,
        _ => throw new AdapterException($"unknown composition '{s}' (lopa, lopa_add, prompt_tuning, idpg)"),
    };

    public string ToJson()
    {
        var o = new JsonObject
        {
            ["peft_type"] = PeftType,
            ["base_model_name_or_path"] = BaseModel,
            ["num_virtual_tokens"] = NumVirtualTokens,
            ["token_dim"] = TokenDim,
            ["rank"] = Rank,
            ["encoder_hidden_size"] = HiddenSize,
            ["encoder"] = Encoder,
            ["encoder_dim"] = EncoderDim,
            ["composition"] = CompositionName(Composition),
        };
        if (Defaults is not null) o[GenerationDefaults.Key] = Defaults.ToJson();
        if (PromptExample is not null) o[PromptExampleKey] = PromptExample;
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Parses a LOPA config, or a Hugging Face PEFT PROMPT_TUNING config (read as composition prompt_tuning).</summary>
    public static AdapterConfig Parse(string json)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(json, documentOptions: Engine.Formats.StrictJson.Options(16)); }
        catch (JsonException e)
        {
            throw new AdapterException(
                $"adapter_config.json is not valid JSON: {Engine.Formats.StrictJson.Describe(e, json)}");
        }
        if (root is not JsonObject o) throw new AdapterException("adapter_config.json is not a JSON object");
        string peft = Str(o, "peft_type") ?? throw new AdapterException("adapter_config.json lacks 'peft_type'");
        AdapterConfig config = peft switch
        {
            PromptTuningType => new AdapterConfig
            {
                PeftType = PromptTuningType, BaseModel = Str(o, "base_model_name_or_path"),
                NumVirtualTokens = Int(o, "num_virtual_tokens") ?? throw new AdapterException("'num_virtual_tokens' is required"),
                TokenDim = Int(o, "token_dim") ?? throw new AdapterException("'token_dim' is required"),
                Rank = 0, HiddenSize = 0, EncoderDim = 0, Composition = Composition.PromptTuning,
            },
            LopaType => new AdapterConfig
            {
                PeftType = LopaType, BaseModel = Str(o, "base_model_name_or_path"),
                NumVirtualTokens = Int(o, "num_virtual_tokens") ?? throw new AdapterException("'num_virtual_tokens' is required"),
                TokenDim = Int(o, "token_dim") ?? throw new AdapterException("'token_dim' is required"),
                Rank = Int(o, "rank") ?? 0, HiddenSize = Int(o, "encoder_hidden_size") ?? 0,
                Encoder = Str(o, "encoder"), EncoderDim = Int(o, "encoder_dim") ?? 0,
                Composition = ParseComposition(Str(o, "composition") ?? "lopa"),
            },
            _ => throw new AdapterException($"peft_type '{peft}' is not supported ({LopaType}, {PromptTuningType})"),
        };
        config = config with
        {
            Defaults = GenerationDefaults.Parse(o[GenerationDefaults.Key]),
            PromptExample = Str(o, PromptExampleKey),
        };
        config.Validate();
        return config;
    }

    public void Validate()
    {
        void Range(int v, int min, int max, string name) { if (v < min || v > max) throw new AdapterException($"'{name}' = {v} is outside [{min}, {max}]"); }
        Range(NumVirtualTokens, 1, MaxVirtualTokens, "num_virtual_tokens");
        Range(TokenDim, 1, MaxDim, "token_dim");
        ValidatePromptExample();
        if (!UsesEncoder) return;
        if (string.IsNullOrWhiteSpace(Encoder)) throw new AdapterException($"composition '{CompositionName(Composition)}' needs an 'encoder'");
        Range(EncoderDim, 1, MaxDim, "encoder_dim");
        Range(HiddenSize, 1, MaxDim, "encoder_hidden_size");
        if (Composition != Composition.Idpg) Range(Rank, 1, MaxRank, "rank");
        if (TrainableParameters > 512L << 20) throw new AdapterException($"adapter would have {TrainableParameters} parameters, over the 512 Mi limit");
    }

    private void ValidatePromptExample()
    {
        if (PromptExample is not null && !AcceptsPromptExample(PromptExample))
        {
            throw new AdapterException($"'{PromptExampleKey}' must be 1 to {MaxPromptExample} characters without " +
                "control characters other than newline and tab");
        }
    }

    public static bool AcceptsPromptExample(string text) => text.Length is > 0 and <= MaxPromptExample
        && !text.Any(c => char.IsControl(c) && c is not ('\n' or '\t'));

    private static string? Str(JsonObject o, string key) => o[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out string? s) => s,
        _ => throw new AdapterException($"'{key}' must be a string"),
    };

    private static int? Int(JsonObject o, string key) => o[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out int i) => i,
        _ => throw new AdapterException($"'{key}' must be an integer"),
    };
}
