using System.Text.Json;

namespace LoPAProxy.Training;

/// <summary>
/// One training or evaluation example cast as generation: the model reads <see cref="Prompt"/> and should continue
/// with <see cref="Target"/>; the instance encoder reads <see cref="Instance"/>. Classification examples also carry
/// every candidate continuation (verbalizer words) and the index of the right one.
/// </summary>
public sealed record TaskExample(string Instance, string Prompt, string Target, IReadOnlyList<string>? Choices = null, int Label = -1);

/// <summary>Reads GLUE tsv files (SST-2, RTE, MRPC) with verbalizers, and jsonl prompt/completion files.</summary>
public static class TaskData
{
    /// <summary>Verbalizer words per task, index = label.</summary>
    public static IReadOnlyList<string> Verbalizer(string task) => task switch
    {
        "sst2" => new[] { " negative", " positive" },
        "rte" => new[] { " yes", " no" },          // entailment, not_entailment
        "mrpc" => new[] { " no", " yes" },         // Quality 0, 1
        _ => throw new ArgumentException($"no verbalizer for task '{task}'"),
    };

    /// <summary>
    /// The task a data path holds: "sst2", "rte" or "mrpc" (GLUE tsv, by folder name: …/SST-2/train.tsv) or "jsonl".
    /// </summary>
    public static string DetectTask(string path)
    {
        if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)) return "jsonl";
        string folder = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(path)) ?? "").ToUpperInvariant();
        return folder switch
        {
            "SST-2" => "sst2",
            "RTE" => "rte",
            "MRPC" => "mrpc",
            _ => throw new ArgumentException($"cannot tell the task of '{path}': expected a GLUE SST-2, RTE or MRPC .tsv in its task folder, or a .jsonl file"),
        };
    }

    public static List<TaskExample> Load(string path, int limit = int.MaxValue)
    {
        string task = DetectTask(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"data file '{path}' does not exist", path);
        return task == "jsonl" ? LoadJsonl(path, limit) : LoadGlue(path, task, limit);
    }

    private static List<TaskExample> LoadGlue(string path, string task, int limit)
    {
        var examples = new List<TaskExample>();
        IReadOnlyList<string> words = Verbalizer(task);
        using var reader = new StreamReader(path);
        string[] header = (reader.ReadLine() ?? "").TrimStart('\uFEFF').Split('\t');
        int Column(string name) => Array.IndexOf(header, name) is var i and >= 0 ? i
            : throw new FormatException($"{path}: no '{name}' column in the header ({string.Join(", ", header)})");
        int lineNo = 1;
        while (reader.ReadLine() is { } line && examples.Count < limit)
        {
            lineNo++;
            if (line.Length == 0) continue;
            string[] f = line.Split('\t');
            string Field(int i) => i < f.Length ? f[i].Trim() : throw new FormatException($"{path}:{lineNo}: {f.Length} columns, need more than {i}");
            (string instance, string prompt, string labelText) = task switch
            {
                "sst2" => (Field(Column("sentence")), $"{Field(Column("sentence"))} Sentiment:", Field(Column("label"))),
                "rte" => ($"{Field(Column("sentence1"))} {Field(Column("sentence2"))}",
                    $"{Field(Column("sentence1"))}\nQuestion: {Field(Column("sentence2"))} Yes or no? Answer:", Field(Column("label"))),
                _ => ($"{Field(Column("#1 String"))} {Field(Column("#2 String"))}",
                    $"{Field(Column("#1 String"))}\n{Field(Column("#2 String"))}\nSame meaning? Answer:", Field(Column("Quality"))),
            };
            int label = labelText switch
            {
                "0" => 0,
                "1" => 1,
                "entailment" => 0,
                "not_entailment" => 1,
                _ => throw new FormatException($"{path}:{lineNo}: label '{labelText}' is not one of the task's labels"),
            };
            examples.Add(new TaskExample(instance, prompt, words[label], words, label));
        }
        return examples;
    }

    /// <summary>One JSON object per line with "prompt" and "completion" strings (extra fields ignored).</summary>
    private static List<TaskExample> LoadJsonl(string path, int limit)
    {
        var examples = new List<TaskExample>();
        int lineNo = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNo++;
            if (examples.Count >= limit) break;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                string prompt = doc.RootElement.GetProperty("prompt").GetString() ?? throw new FormatException("prompt is null");
                string completion = doc.RootElement.GetProperty("completion").GetString() ?? throw new FormatException("completion is null");
                if (completion.Length == 0) throw new FormatException("completion is empty");
                examples.Add(new TaskExample(prompt, prompt, completion));
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw new FormatException($"{path}:{lineNo}: expected {{\"prompt\": \"…\", \"completion\": \"…\"}} ({e.Message})", e);
            }
        }
        return examples;
    }
}
