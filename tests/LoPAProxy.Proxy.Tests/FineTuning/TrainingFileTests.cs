using System.Text;
using LoPAProxy.Proxy.FineTuning;

namespace LoPAProxy.Proxy.Tests.FineTuning;

/// <summary>#27 item 1: fine-tuning files are checked when they arrive, with line numbers in the error.</summary>
public class TrainingFileTests
{
    private const string Chat = """{"messages":[{"role":"user","content":"a fine film. Sentiment:"},""" +
        """{"role":"assistant","content":" positive"}]}""";

    private static TrainingFileSummary Check(string text) => TrainingFile.Validate(Encoding.UTF8.GetBytes(text));

    [Fact]
    public void Chat_and_completion_files_are_counted()
    {
        Assert.Equal(new TrainingFileSummary("chat", 3), Check($"{Chat}\n{Chat}\r\n{Chat}\n"));
        string system = """{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},""" +
            """{"role":"assistant","content":"Hello"}]}""";
        Assert.Equal(new TrainingFileSummary("chat", 1), Check(system));
        Assert.Equal(new TrainingFileSummary("prompt_completion", 2),
            Check("{\"prompt\":\"2+2=\",\"completion\":\"4\"}\n{\"prompt\":\"3+3=\",\"completion\":\"6\"}"));
    }

    [Theory]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"  \"}]}",
        "line 2: the assistant's answer (the target) is empty")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"user\",\"content\":\"y\"}]}",
        "line 2: the last message must be the assistant's")]
    [InlineData("{\"messages\":[{\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"y\"}]}",
        "line 2: a message without a 'role'")]
    [InlineData("{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"y\"}]}",
        "line 2: role 'tool' is not one of system, user, assistant")]
    [InlineData("{\"messages\":[{\"role\":\"system\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"y\"}]}",
        "line 2: no user message with text")]
    [InlineData("{\"messages\": [", "line 2: not valid JSON")]
    [InlineData("[1, 2]", "line 2: not a JSON object")]
    [InlineData("{\"prompt\":\"a\",\"completion\":\"b\"}", "line 2: a prompt_completion example in a chat file")]
    [InlineData("", "line 2: an empty line")]
    [InlineData("{\"text\":\"a\"}", "line 2: expected {\"messages\": […]} or {\"prompt\"")]
    public void A_bad_line_is_reported_by_number(string line, string expected)
    {
        var e = Assert.Throws<TrainingFileException>(() => Check($"{Chat}\n{line}\n{Chat}\n"));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void At_most_five_problems_are_reported_and_an_empty_or_binary_file_is_refused()
    {
        string bad = string.Join('\n', Enumerable.Repeat("{\"prompt\":\"\",\"completion\":\"x\"}", 9));
        var e = Assert.Throws<TrainingFileException>(() => Check(bad));
        Assert.Equal(TrainingFile.MaxReported, e.Message.Split("; ").Length);
        Assert.StartsWith("line 1: the prompt is empty", e.Message, StringComparison.Ordinal);
        Assert.Contains("no examples", Assert.Throws<TrainingFileException>(() => Check("")).Message,
            StringComparison.Ordinal);
        Assert.Contains("not UTF-8", Assert.Throws<TrainingFileException>(() =>
            TrainingFile.Validate([0xff, 0xfe, 0x00])).Message, StringComparison.Ordinal);
    }

    /// <summary>Hostile bytes: mutated copies of a good file are accepted or refused, never another exception.
    /// </summary>
    [Fact]
    public void Mutated_files_are_accepted_or_refused_never_crash()
    {
        byte[] good = Encoding.UTF8.GetBytes($"{Chat}\n{Chat}\n");
        var random = new Random(7);
        for (int i = 0; i < 2_000; i++)
        {
            byte[] mutant = (byte[])good.Clone();
            for (int k = random.Next(1, 4); k > 0; k--) mutant[random.Next(mutant.Length)] = (byte)random.Next(256);
            try
            {
                TrainingFile.Validate(mutant);
            }
            catch (TrainingFileException)
            {
                // refused with a reason
            }
        }
    }
}
