using System.Text.Json;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Proxy.Tests.FineTuning;

/// <summary>
/// #27 item 1, end to end with the official openai client (tests/node/openai-files.mjs): a few hundred SST-2 reviews
/// in chat format uploaded, listed, read back; a broken file refused with its line numbers; another purpose refused;
/// another tenant sees nothing of it; deleted.
/// </summary>
public class FileApiTests(ProxyFixture f) : IClassFixture<ProxyFixture>
{
    [Fact]
    public async Task The_openai_client_uploads_lists_reads_and_deletes_fine_tuning_files_per_tenant()
    {
        string dir = TempDir.Create();
        string good = Path.Combine(dir, "sst2-train.jsonl"), bad = Path.Combine(dir, "broken.jsonl");
        string[] examples = File.ReadLines(SharedFiles.Path_("data", "glue", "SST-2", "train.tsv")).Skip(1).Take(300)
            .Select(ChatLine).ToArray();
        await File.WriteAllTextAsync(good, string.Join('\n', examples) + "\n");
        await File.WriteAllTextAsync(bad, examples[0] + "\n{\"messages\": [\n" + examples[1] + "\n" +
            "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"\"}]}\n");
        var environment = new Dictionary<string, string>
        {
            ["OTHER_API_KEY"] = ProxyFixture.GlobexKey, ["GOOD_FILE"] = good, ["BAD_FILE"] = bad,
        };
        JsonElement r = await f.RunOpenAiScriptAsync("openai-files.mjs", environment: environment);

        JsonElement created = r.GetProperty("created");
        string id = created.GetProperty("id").GetString()!;
        Assert.StartsWith("file-", id, StringComparison.Ordinal);
        Assert.Equal(("file", "fine-tune", "processed", "sst2-train.jsonl"), (created.GetProperty("object").GetString(),
            created.GetProperty("purpose").GetString(), created.GetProperty("status").GetString(),
            created.GetProperty("filename").GetString()));
        long bytes = new FileInfo(good).Length;
        Assert.Equal(bytes, created.GetProperty("bytes").GetInt64());
        Assert.Equal(300, created.GetProperty("examples").GetInt32());
        Assert.Contains(id, r.GetProperty("listed").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(id, r.GetProperty("retrieved").GetProperty("id").GetString());
        Assert.Equal(bytes, r.GetProperty("contentLength").GetInt64());

        JsonElement broken = r.GetProperty("bad");
        Assert.Equal((400, "invalid_file", "file"), (broken.GetProperty("status").GetInt32(),
            broken.GetProperty("code").GetString(), broken.GetProperty("param").GetString()));
        string message = broken.GetProperty("message").GetString()!;
        Assert.Contains("line 2: not valid JSON", message, StringComparison.Ordinal);
        Assert.Contains("line 4: the assistant's answer (the target) is empty", message, StringComparison.Ordinal);
        Assert.Equal("purpose", r.GetProperty("purpose").GetProperty("param").GetString());
        Assert.Equal(404, r.GetProperty("otherRetrieve").GetProperty("status").GetInt32());
        Assert.Equal(404, r.GetProperty("otherDelete").GetProperty("status").GetInt32());
        Assert.DoesNotContain(id, r.GetProperty("otherListed").EnumerateArray().Select(e => e.GetString()));
        Assert.True(r.GetProperty("deleted").GetProperty("deleted").GetBoolean());
        Assert.Equal(404, r.GetProperty("afterDelete").GetProperty("status").GetInt32());
    }

    /// <summary>An SST-2 row as a chat example in the demo adapter's format: the review and " Sentiment:", answered
    /// " positive" or " negative".</summary>
    private static string ChatLine(string row)
    {
        string[] fields = row.Split('\t');
        var example = new
        {
            messages = new[]
            {
                new { role = "user", content = fields[0].Trim() + " Sentiment:" },
                new { role = "assistant", content = fields[1] == "1" ? " positive" : " negative" },
            },
        };
        return JsonSerializer.Serialize(example);
    }
}
