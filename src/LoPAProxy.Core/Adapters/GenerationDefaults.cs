using System.Globalization;
using System.Text.Json.Nodes;

namespace LoPAProxy.Core.Adapters;

/// <summary>
/// The generation settings an adapter was made for (adapter_config.json "generation_defaults"), applied field by
/// field to a request that sets none of its own: a classifier trained to answer one label word can say
/// temperature 0 and a few tokens, so a client at its SDK's defaults still gets the word. A request's own value always
/// wins. Only settings every OpenAI-compatible backend understands: temperature, top_p, max_tokens, stop.
/// </summary>
public sealed record GenerationDefaults
{
    public const string Key = "generation_defaults";
    public const int MaxStops = 4, MaxStopLength = 64, MaxTokensLimit = 1 << 20;

    /// <summary>[0, 2].</summary>
    public double? Temperature { get; init; }
    /// <summary>(0, 1].</summary>
    public double? TopP { get; init; }
    /// <summary>[1, 2^20]; applied when the request has neither max_tokens nor max_completion_tokens.</summary>
    public int? MaxTokens { get; init; }
    /// <summary>1–4 non-empty strings of at most 64 characters.</summary>
    public IReadOnlyList<string>? Stop { get; init; }

    /// <summary>Fills what <paramref name="body"/> (an OpenAI chat or completions request) leaves unset.</summary>
    public void ApplyTo(JsonObject body)
    {
        if (Temperature is { } temperature && IsUnset(body, "temperature")) body["temperature"] = temperature;
        if (TopP is { } topP && IsUnset(body, "top_p")) body["top_p"] = topP;
        if (MaxTokens is { } max && IsUnset(body, "max_tokens") && IsUnset(body, "max_completion_tokens"))
        {
            body["max_tokens"] = max;
        }
        if (Stop is not null && IsUnset(body, "stop")) body["stop"] = StopArray();
    }

    public JsonObject ToJson()
    {
        var o = new JsonObject();
        if (Temperature is { } temperature) o["temperature"] = temperature;
        if (TopP is { } topP) o["top_p"] = topP;
        if (MaxTokens is { } max) o["max_tokens"] = max;
        if (Stop is not null) o["stop"] = StopArray();
        return o;
    }

    /// <exception cref="AdapterException">not an object, an unknown setting, or a value out of range.</exception>
    public static GenerationDefaults? Parse(JsonNode? node)
    {
        if (node is null) return null;
        if (node is not JsonObject o) throw Invalid("must be an object");
        var defaults = new GenerationDefaults();
        foreach (var (name, value) in o)
        {
            defaults = name switch
            {
                "temperature" => defaults with { Temperature = Number(name, value, 0, 2, lowOpen: false) },
                "top_p" => defaults with { TopP = Number(name, value, 0, 1, lowOpen: true) },
                "max_tokens" => defaults with { MaxTokens = WholeNumber(name, value, 1, MaxTokensLimit) },
                "stop" => defaults with { Stop = Stops(value) },
                _ => throw Invalid($"'{name}' is not a generation setting (temperature, top_p, max_tokens, stop)"),
            };
        }
        return defaults;
    }

    private JsonArray StopArray() => new(Stop!.Select(s => (JsonNode?)s).ToArray());

    private static bool IsUnset(JsonObject body, string field) => body[field] is null;

    private static int WholeNumber(string name, JsonNode? value, int low, int high) =>
        (int)Number(name, value, low, high, lowOpen: false, whole: true);

    private static double Number(string name, JsonNode? value, double low, double high, bool lowOpen,
        bool whole = false)
    {
        if (value is not JsonValue v || !v.TryGetValue(out double x)) throw Invalid($"'{name}' must be a number");
        bool inRange = (lowOpen ? x > low : x >= low) && x <= high;
        if (!inRange || whole && x != Math.Floor(x))
        {
            string interval = (lowOpen ? "(" : "[") + low.ToString(CultureInfo.InvariantCulture) + ", " +
                high.ToString(CultureInfo.InvariantCulture) + "]";
            throw Invalid($"'{name}' = {x.ToString(CultureInfo.InvariantCulture)} is outside {interval}" +
                (whole ? " or not a whole number" : ""));
        }
        return x;
    }

    private static string[] Stops(JsonNode? value)
    {
        JsonNode?[] items = value switch
        {
            JsonValue single => [single],
            JsonArray list => list.ToArray(),
            _ => throw Invalid("'stop' must be a string or a list of strings"),
        };
        if (items.Length is 0 or > MaxStops) throw Invalid($"'stop' holds 1 to {MaxStops} strings");
        var stops = new string[items.Length];
        for (int i = 0; i < items.Length; i++)
        {
            if (items[i] is not JsonValue v || !v.TryGetValue(out string? s) || s.Length is 0 or > MaxStopLength)
            {
                throw Invalid($"each 'stop' is a non-empty string of at most {MaxStopLength} characters");
            }
            stops[i] = s;
        }
        return stops;
    }

    private static AdapterException Invalid(string why) => new($"{Key}: {why}");
}
