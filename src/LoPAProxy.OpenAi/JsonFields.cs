using System.Text.Json;

namespace LoPAProxy.OpenAi;

/// <summary>Typed access to request fields; a wrong type is a 400 that names the field.</summary>
public static class JsonFields
{
    public static JsonElement? Get(JsonElement o, string name) =>
        o.TryGetProperty(name, out JsonElement v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public static int? Int(JsonElement o, string name, int min, int max)
    {
        if (Get(o, name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long x)) throw ApiException.BadRequest($"'{name}' must be an integer", name);
        if (x < min || x > max) throw ApiException.BadRequest($"'{name}' must be between {min} and {max}, got {x}", name);
        return (int)x;
    }

    public static double? Number(JsonElement o, string name, double min, double max)
    {
        if (Get(o, name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number) throw ApiException.BadRequest($"'{name}' must be a number", name);
        double x = v.GetDouble();
        if (!(x >= min && x <= max)) throw ApiException.BadRequest($"'{name}' must be between {min} and {max}, got {x}", name);
        return x;
    }

    public static bool? Bool(JsonElement o, string name)
    {
        if (Get(o, name) is not { } v) return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw ApiException.BadRequest($"'{name}' must be a boolean", name),
        };
    }

    public static string? String(JsonElement o, string name)
    {
        if (Get(o, name) is not { } v) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw ApiException.BadRequest($"'{name}' must be a string", name);
    }

    /// <summary>A string or a list of strings (OpenAI's "stop").</summary>
    public static string[] StringOrList(JsonElement o, string name, int maxItems)
    {
        if (Get(o, name) is not { } v) return Array.Empty<string>();
        if (v.ValueKind == JsonValueKind.String) return new[] { v.GetString()! };
        if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() > maxItems) throw ApiException.BadRequest($"'{name}' must be a string or a list of at most {maxItems} strings", name);
        return v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw ApiException.BadRequest($"'{name}' must hold strings", name)).ToArray();
    }
}
