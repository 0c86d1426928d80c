using System.CommandLine;
using System.Text.Json;

namespace LoPAProxy.Cli;

/// <summary>
/// How the API commands print an answer: a table (lists) or aligned "field  value" lines (one object) for people;
/// the API's JSON as is with --json, for scripts. An error prints the API's message and returns 1.
/// </summary>
internal static class ApiOutput
{
    private const int MaxCell = 24;

    public static Option<bool> JsonOption() => new("--json") { Description = "print the API's JSON as is" };

    public static async Task<int> PrintAsync(HttpResponseMessage response, bool json)
    {
        string body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            Console.Error.WriteLine($"lopa: {(int)response.StatusCode}: {ErrorMessage(body)}");
            return 1;
        }
        if (body.Length == 0) Console.WriteLine($"{(int)response.StatusCode} {response.ReasonPhrase}");
        else if (json) Console.WriteLine(body);
        else Console.Write(Human(body));
        return 0;
    }

    private static string ErrorMessage(string body)
    {
        try
        {
            return JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("message").GetString()
                ?? body;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return body;
        }
    }

    /// <summary>
    /// {"data": [...]} as a table ({"totals": [...]}, a usage page, as its totals); an object (or an envelope
    /// holding one) as field lines, nested objects' fields as parent.field.
    /// </summary>
    internal static string Human(string body)
    {
        using JsonDocument doc = JsonDocument.Parse(body);
        JsonElement root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) return body + "\n";
        if (root.TryGetProperty("totals", out JsonElement totals) && totals.ValueKind == JsonValueKind.Array)
            return Table(totals);
        if (root.TryGetProperty("data", out JsonElement data) && data.ValueKind == JsonValueKind.Array)
            return Table(data);
        var properties = root.EnumerateObject().ToList();
        bool envelope = properties.Count == 1 && properties[0].Value.ValueKind == JsonValueKind.Object;
        return Fields(envelope ? properties[0].Value : root);
    }

    private static string Table(JsonElement rows)
    {
        if (rows.GetArrayLength() == 0) return "(none)\n";
        List<string> columns = rows[0].EnumerateObject().Where(p => IsScalar(p.Value)).Select(p => p.Name).ToList();
        var cells = new List<string[]> { columns.ToArray() };
        foreach (JsonElement row in rows.EnumerateArray())
            cells.Add(columns.Select(c => row.TryGetProperty(c, out JsonElement v) ? Cell(v) : "").ToArray());
        int[] widths = columns.Select((_, i) => cells.Max(r => r[i].Length)).ToArray();
        var lines = cells.Select(r => string.Join("  ", r.Select((v, i) => v.PadRight(widths[i]))).TrimEnd());
        return string.Join("\n", lines) + "\n";
    }

    private static string Fields(JsonElement item)
    {
        var fields = new List<(string Name, JsonElement Value)>();
        foreach (JsonProperty p in item.EnumerateObject())
        {
            if (IsScalar(p.Value))
            {
                fields.Add((p.Name, p.Value));
            }
            else if (p.Value.ValueKind == JsonValueKind.Object)
            {
                fields.AddRange(p.Value.EnumerateObject().Where(c => IsScalar(c.Value))
                    .Select(c => ($"{p.Name}.{c.Name}", c.Value)));
            }
        }
        int width = fields.Count == 0 ? 0 : fields.Max(f => f.Name.Length);
        var lines = fields.Select(f => $"{f.Name.PadRight(width)}  {Text(f.Value)}");
        return string.Join("\n", lines) + "\n";
    }

    private static bool IsScalar(JsonElement v) => v.ValueKind is not (JsonValueKind.Object or JsonValueKind.Array);

    private static string Text(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString()!,
        JsonValueKind.Null => "-",
        _ => v.GetRawText(),
    };

    /// <summary>A table cell: long values (hashes) shortened, so rows fit a terminal.</summary>
    private static string Cell(JsonElement v)
    {
        string text = Text(v);
        return text.Length <= MaxCell ? text : text[..(MaxCell - 1)] + "…";
    }
}
