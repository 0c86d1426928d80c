using System.Text.Json;

namespace LoPAProxy.Engine.Formats;

/// <summary>
/// How every JSON this project reads from outside is parsed — request bodies in both servers, adapter configs,
/// safetensors headers, model configs, backend answers: nesting bounded and duplicate keys refused. Two parsers may
/// read a duplicated key differently (one the first, another the last), and System.Text.Json's JsonObject throws
/// ArgumentException on first access to one — so it is a typed parse error, naming the key, at the door.
/// </summary>
public static class StrictJson
{
    /// <summary>The one nesting bound for requests: the proxy forwards nothing the reference server would
    /// refuse.</summary>
    public const int MaxRequestDepth = 64;

    /// <summary>Options for a document nested at most <paramref name="maxDepth"/> deep, duplicate keys
    /// refused.</summary>
    public static JsonDocumentOptions Options(int maxDepth = MaxRequestDepth) =>
        new() { MaxDepth = maxDepth, AllowDuplicateProperties = false };

    /// <summary>
    /// A parse error's text for people: System.Text.Json cuts a duplicated key's name to 15 characters in its
    /// message, so the key is found again here and named whole, with its path.
    /// </summary>
    public static string Describe(JsonException error, ReadOnlySpan<byte> utf8) =>
        FindDuplicateKey(utf8) is { } duplicate ? $"duplicate key '{duplicate}'" : error.Message;

    public static string Describe(JsonException error, string text) =>
        Describe(error, System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary>The first key that appears twice in one object (with its path, e.g. "a.b"), or null.</summary>
    public static string? FindDuplicateKey(ReadOnlySpan<byte> utf8)
    {
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = 1024 });
        var open = new Stack<(HashSet<string>? Keys, string Path)>();
        string path = "";
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                        open.Push((new HashSet<string>(StringComparer.Ordinal), path));
                        break;
                    case JsonTokenType.StartArray:
                        open.Push((null, path));
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        open.Pop();
                        break;
                    case JsonTokenType.PropertyName:
                        string key = reader.GetString()!;
                        var (keys, parent) = open.Peek();
                        path = parent.Length == 0 ? key : parent + "." + key;
                        if (!keys!.Add(key)) return path;
                        continue; // the value that follows nests under this key
                }
                if (reader.TokenType is not (JsonTokenType.StartObject or JsonTokenType.StartArray))
                    path = open.Count > 0 ? open.Peek().Path : "";
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // Not well-formed before any duplicate: the parser's own message says why.
        }
        return null;
    }
}

