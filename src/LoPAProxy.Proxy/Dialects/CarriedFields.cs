using System.Text.Json.Nodes;
using LoPAProxy.OpenAi;

namespace LoPAProxy.Proxy.Dialects;

/// <summary>
/// What a dialect that rebuilds the body in its backend's own shape carries of an OpenAI completions request: the
/// fields it maps, and those that change nothing there (<see cref="Harmless"/>). Any other field a client sets is a
/// 400 unsupported_parameter naming it — never accepted and dropped. A field sent with the value that means "not
/// used" (null, false, "", an empty list or object, n or best_of 1) is no request and passes.
/// </summary>
public sealed class CarriedFields(string dialect, params string[] mapped)
{
    /// <summary>Fields that ask the backend for nothing it could ignore.</summary>
    public static readonly string[] Harmless = ["model", "prompt", "stream", "stream_options", "user"];

    private readonly HashSet<string> _carried = new(mapped.Concat(Harmless), StringComparer.Ordinal);

    public IReadOnlyCollection<string> Carried => _carried;

    /// <exception cref="ApiException">400 unsupported_parameter naming the first field not carried.</exception>
    public void Check(JsonObject body)
    {
        foreach (var (field, value) in body)
        {
            if (_carried.Contains(field) || AsksForNothing(field, value)) continue;
            throw Errors.Unsupported(field, $"the {dialect} dialect does not carry it with an adapter (it carries " +
                $"{string.Join(", ", mapped)})");
        }
    }

    private static bool AsksForNothing(string field, JsonNode? value) => value switch
    {
        null => true,
        JsonValue v when v.TryGetValue(out bool on) => !on,
        JsonValue v when v.TryGetValue(out string? s) => s.Length == 0,
        JsonValue v when field is "n" or "best_of" && v.TryGetValue(out double x) => x == 1,
        JsonArray { Count: 0 } or JsonObject { Count: 0 } => true,
        _ => false,
    };
}
