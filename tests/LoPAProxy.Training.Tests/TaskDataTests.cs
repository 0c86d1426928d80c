using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Training.Tests;

public class TaskDataTests
{
    [Theory]
    [InlineData("SST-2", 872, " positive")]
    [InlineData("RTE", 277, " no")]
    [InlineData("MRPC", 408, " yes")]
    public void Real_GLUE_dev_sets_load_with_their_verbalizers(string task, int count, string someWord)
    {
        List<TaskExample> dev = TaskData.Load(SharedFiles.Path_("data", "glue", task, "dev.tsv"));
        Assert.Equal(count, dev.Count);
        Assert.All(dev, e => Assert.Equal(e.Choices![e.Label], e.Target));
        Assert.Contains(dev, e => e.Target == someWord);
        Assert.True(dev.Select(e => e.Label).Distinct().Count() == 2);
        Assert.All(dev, e => Assert.EndsWith(task == "SST-2" ? " Sentiment:" : " Answer:", e.Prompt));
    }

    [Fact]
    public void Bad_files_are_typed_errors_that_name_the_line()
    {
        string dir = TempDir.Create();
        string sst = Path.Combine(dir, "SST-2");
        Directory.CreateDirectory(sst);
        File.WriteAllText(Path.Combine(sst, "train.tsv"), "sentence\tlabel\nfine movie\t1\nbad movie\tmaybe\n");
        var e = Assert.Throws<FormatException>(() => TaskData.Load(Path.Combine(sst, "train.tsv")));
        Assert.Contains(":3:", e.Message);
        File.WriteAllText(Path.Combine(sst, "dev.tsv"), "text\tlabel\nx\t1\n");
        Assert.Contains("'sentence'", Assert.Throws<FormatException>(() => TaskData.Load(Path.Combine(sst, "dev.tsv"))).Message);
        Assert.Throws<ArgumentException>(() => TaskData.Load(Path.Combine(dir, "data.tsv")));

        string jsonl = Path.Combine(dir, "gen.jsonl");
        File.WriteAllText(jsonl, "{\"prompt\": \"2+2=\", \"completion\": \" 4\"}\n\n{\"prompt\": \"x\"}\n");
        Assert.Contains(":3:", Assert.Throws<FormatException>(() => TaskData.Load(jsonl)).Message);
        File.WriteAllText(jsonl, "{\"prompt\": \"2+2=\", \"completion\": \" 4\", \"id\": 1}\nnot json\n");
        Assert.Single(TaskData.Load(jsonl, limit: 1));
        Assert.Throws<FormatException>(() => TaskData.Load(jsonl));
    }

    [Fact]
    public void Target_tokens_are_what_follows_the_prompt_and_long_prompts_lose_their_start()
    {
        var tok = TestModels.StoriesTokenizer();
        var t = TokenizedExample.Create(tok, "a fine movie Sentiment:", " positive", 512);
        Assert.Equal(tok.Encode("a fine movie Sentiment: positive", addBos: true, addEos: false), t.Ids);
        Assert.Equal(tok.Encode("a fine movie Sentiment:", addBos: true, addEos: false), t.Ids[..t.PromptLength]);
        Assert.True(t.TargetLength >= 1);

        var cut = TokenizedExample.Create(tok, string.Concat(Enumerable.Repeat("word ", 100)) + "Sentiment:", " negative", 40);
        Assert.Equal(40, cut.Ids.Length);
        Assert.Equal(tok.BosId, cut.Ids[0]);
        Assert.Equal(tok.Encode("Sentiment: negative", addBos: false, addEos: false).TakeLast(cut.TargetLength + 3), cut.Ids.TakeLast(cut.TargetLength + 3));
        Assert.Throws<ArgumentException>(() => TokenizedExample.Create(tok, "x", string.Concat(Enumerable.Repeat(" word", 60)), 40));
    }
}
