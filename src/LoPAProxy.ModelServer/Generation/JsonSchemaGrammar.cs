using System.Text;
using System.Text.Json;

namespace LoPAProxy.ModelServer.Generation;

/// <summary>
/// OpenAI's response_format {"type": "json_schema"} as a llama.cpp grammar (GBNF): every output the grammar allows
/// is valid under the schema. The subset: <c>type</c> (one or a list), <c>properties</c> with <c>required</c>
/// (required members first in schema order, then the optional ones in order, each at most once; no others),
/// <c>items</c>, <c>enum</c>, <c>const</c>, <c>anyOf</c> and <c>oneOf</c> (both as alternatives: an output matching
/// two oneOf branches is not ruled out), <c>$ref</c> into <c>#/$defs</c> or <c>#/definitions</c> (recursion
/// allowed); annotations (title, description, default, …) are ignored and <c>additionalProperties</c> needs nothing
/// (no extra member is ever written). Any other keyword — pattern, format, minimum, minItems, allOf, … — is a
/// <see cref="JsonSchemaUnsupportedException"/> naming it, never silently dropped.
/// </summary>
internal sealed class JsonSchemaGrammar
{
    private const int MaxDepth = 32;
    private const int MaxRules = 1_000;

    private static readonly HashSet<string> Annotations = new(StringComparer.Ordinal)
    {
        "title", "description", "default", "examples", "$schema", "$id", "$comment", "$defs", "definitions",
        "additionalProperties", "strict", "readOnly", "writeOnly", "deprecated",
    };

    private static readonly HashSet<string> Keywords = new(StringComparer.Ordinal)
    {
        "type", "properties", "required", "items", "enum", "const", "anyOf", "oneOf", "$ref",
    };

    private readonly JsonElement _root;
    private readonly List<string> _rules = new();
    private readonly Dictionary<string, string> _refRules = new(StringComparer.Ordinal);

    private JsonSchemaGrammar(JsonElement root) { _root = root; }

    /// <summary>The grammar of <paramref name="schema"/>, starting at <see cref="SamplingSettings.GrammarRoot"/>.
    /// </summary>
    /// <exception cref="JsonSchemaUnsupportedException">a keyword outside the subset, or a malformed schema.
    /// </exception>
    public static string From(JsonElement schema)
    {
        var grammar = new JsonSchemaGrammar(schema);
        string root = grammar.Expression(schema, "#", 0);
        var text = new StringBuilder();
        text.Append(SamplingSettings.GrammarRoot).Append(" ::= ").Append(root).Append(" ws\n");
        foreach (string rule in grammar._rules) text.Append(rule).Append('\n');
        return text.Append(JsonGrammar.Rules).ToString();
    }

    /// <summary>A GBNF expression for the values <paramref name="schema"/> allows.</summary>
    private string Expression(JsonElement schema, string path, int depth)
    {
        if (depth > MaxDepth) throw Unsupported(path, $"nesting deeper than {MaxDepth}");
        if (schema.ValueKind == JsonValueKind.True) return "value";
        if (schema.ValueKind != JsonValueKind.Object) throw Unsupported(path, "a schema must be an object");
        foreach (JsonProperty keyword in schema.EnumerateObject())
        {
            if (!Keywords.Contains(keyword.Name) && !Annotations.Contains(keyword.Name))
                throw Unsupported(path, $"'{keyword.Name}' is not supported");
        }
        if (schema.TryGetProperty("$ref", out JsonElement reference)) return Reference(reference, path, depth);
        if (schema.TryGetProperty("const", out JsonElement constant)) return Literal(constant);
        if (schema.TryGetProperty("enum", out JsonElement values)) return Enum(values, path);
        if (schema.TryGetProperty("anyOf", out JsonElement anyOf)) return Alternatives(anyOf, path + "/anyOf", depth);
        if (schema.TryGetProperty("oneOf", out JsonElement oneOf)) return Alternatives(oneOf, path + "/oneOf", depth);
        if (!schema.TryGetProperty("type", out JsonElement type)) return "value";
        if (type.ValueKind == JsonValueKind.String) return OfType(schema, type.GetString()!, path, depth);
        if (type.ValueKind != JsonValueKind.Array || type.GetArrayLength() == 0)
            throw Unsupported(path, "'type' must be a name or a list of names");
        IEnumerable<string> each = type.EnumerateArray().Select(t => OfType(schema, TypeName(t, path), path, depth));
        return "( " + string.Join(" | ", each) + " )";
    }

    private string OfType(JsonElement schema, string type, string path, int depth) => type switch
    {
        "string" => "string",
        "number" => "number",
        "integer" => "integer",
        "boolean" => "boolean",
        "null" => "\"null\"",
        "object" => Object(schema, path, depth),
        "array" => Array(schema, path, depth),
        _ => throw Unsupported(path, $"unknown type '{type}'"),
    };

    private static string TypeName(JsonElement t, string path) => t.ValueKind == JsonValueKind.String
        ? t.GetString()!
        : throw Unsupported(path, "'type' must be a name or a list of names");

    // object ::= "{" ws required ("," ws required)* optional-tail "}" — members in schema order, required first
    private string Object(JsonElement schema, string path, int depth)
    {
        if (!schema.TryGetProperty("properties", out JsonElement properties)) return "object";
        if (properties.ValueKind != JsonValueKind.Object) throw Unsupported(path, "'properties' must be an object");
        HashSet<string> required = RequiredNames(schema, properties, path);
        var mandatory = new List<string>();
        var optional = new List<string>();
        foreach (JsonProperty p in properties.EnumerateObject())
        {
            string value = Expression(p.Value, $"{path}/properties/{p.Name}", depth + 1);
            string member = $"{Literal(JsonSerializer.Serialize(p.Name))} ws \":\" ws {value} ws";
            (required.Contains(p.Name) ? mandatory : optional).Add(member);
        }
        string body = mandatory.Count > 0
            ? string.Join(" \",\" ws ", mandatory) + string.Concat(optional.Select(m => $" ( \",\" ws {m} )?"))
            : OptionalOnly(optional);
        return Rule($"\"{{\" ws {body} \"}}\"");
    }

    /// <summary>Any ordered subset of optional members: start(k) ::= member_k rest(k+1) | start(k+1) | nothing.
    /// </summary>
    private string OptionalOnly(List<string> members)
    {
        string start = "";
        for (int k = members.Count - 1; k >= 0; k--)
        {
            string rest = string.Concat(members.Skip(k + 1).Select(m => $" ( \",\" ws {m} )?"));
            string next = start.Length == 0 ? "" : " | " + start;
            start = Rule($"{members[k]}{rest}{next}");
        }
        return start.Length == 0 ? "" : start + "?";
    }

    private static HashSet<string> RequiredNames(JsonElement schema, JsonElement properties, string path)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        if (!schema.TryGetProperty("required", out JsonElement required)) return names;
        if (required.ValueKind != JsonValueKind.Array) throw Unsupported(path, "'required' must be a list of names");
        foreach (JsonElement name in required.EnumerateArray())
        {
            if (name.ValueKind != JsonValueKind.String || !properties.TryGetProperty(name.GetString()!, out _))
                throw Unsupported(path, $"required {name} is not one of 'properties'");
            names.Add(name.GetString()!);
        }
        return names;
    }

    private string Array(JsonElement schema, string path, int depth)
    {
        string item = schema.TryGetProperty("items", out JsonElement items)
            ? Expression(items, path + "/items", depth + 1)
            : "value";
        return Rule($"\"[\" ws ( {item} ws ( \",\" ws {item} ws )* )? \"]\"");
    }

    private string Alternatives(JsonElement list, string path, int depth)
    {
        if (list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0)
            throw Unsupported(path, "must be a non-empty list of schemas");
        IEnumerable<string> each = list.EnumerateArray().Select((s, i) => Expression(s, $"{path}/{i}", depth + 1));
        return "( " + string.Join(" | ", each) + " )";
    }

    private static string Enum(JsonElement values, string path)
    {
        if (values.ValueKind != JsonValueKind.Array || values.GetArrayLength() == 0)
            throw Unsupported(path, "'enum' must be a non-empty list");
        return "( " + string.Join(" | ", values.EnumerateArray().Select(Literal)) + " )";
    }

    /// <summary>A local reference, one rule per target (so recursive schemas stay finite).</summary>
    private string Reference(JsonElement reference, string path, int depth)
    {
        string target = reference.ValueKind == JsonValueKind.String ? reference.GetString()! : "";
        if (_refRules.TryGetValue(target, out string? known)) return known;
        JsonElement schema = Resolve(target, path);
        string name = $"ref{_refRules.Count}";
        _refRules[target] = name;
        _rules.Add(""); // reserve the slot, filled once the target's own rules exist
        int slot = _rules.Count - 1;
        _rules[slot] = $"{name} ::= {Expression(schema, target, depth + 1)}";
        return name;
    }

    private JsonElement Resolve(string target, string path)
    {
        if (target == "#") return _root;
        string[] parts = target.Split('/');
        if (parts.Length != 3 || parts[0] != "#" || parts[1] is not ("$defs" or "definitions")
            || !_root.TryGetProperty(parts[1], out JsonElement defs) || defs.ValueKind != JsonValueKind.Object
            || !defs.TryGetProperty(parts[2], out JsonElement schema))
        {
            throw Unsupported(path, $"'$ref' {target} is not a local #/$defs/… or #/definitions/… schema");
        }
        return schema;
    }

    /// <summary>Names a rule for <paramref name="body"/> and returns the name.</summary>
    private string Rule(string body)
    {
        if (_rules.Count >= MaxRules) throw Unsupported("#", $"the schema needs over {MaxRules} grammar rules");
        string name = $"r{_rules.Count}";
        _rules.Add($"{name} ::= {body}");
        return name;
    }

    /// <summary>The exact JSON text of a value, as a GBNF string literal.</summary>
    private static string Literal(JsonElement value) => Literal(JsonSerializer.Serialize(value));

    private static string Literal(string text)
    {
        var literal = new StringBuilder("\"");
        foreach (char c in text)
        {
            string escaped = c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ => c.ToString(),
            };
            literal.Append(escaped);
        }
        return literal.Append('"').ToString();
    }

    private static JsonSchemaUnsupportedException Unsupported(string path, string why) => new($"{why} (at {path})");
}

/// <summary>A JSON schema this server cannot turn into a grammar; the message says what and where.</summary>
public sealed class JsonSchemaUnsupportedException(string message) : Exception(message);
