using System.Globalization;
using System.Text;
using System.Text.Json;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.ModelServer.Tests;

/// <summary>
/// #25 item 3: logprobs from the server's logits, checked against an independent reference — stories260K's forward
/// pass written from run.c in PyTorch (float64, tests/python/llama2c_logprobs.py) over the same token ids.
/// </summary>
public class LogprobsTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Prompt = "Tom had a red kite";
    private const int Steps = 8;
    private const double Tolerance = 2e-3; // llama.cpp runs the model in float32

    /// <summary>Per greedy step from the prompt: the greedy token's bytes and every token's (bytes, logprob).
    /// </summary>
    private static readonly Lazy<List<(string Greedy, List<(string Bytes, double Logprob)> All)>> Reference =
        new(RunReference);

    [Fact]
    public async Task Completions_logprobs_match_pytorch_along_the_greedy_path()
    {
        var (status, body) = await server.PostAsync("/v1/completions",
            new { prompt = Prompt, max_tokens = Steps, temperature = 0, logprobs = 5 });
        Assert.Equal(200, status);
        JsonElement choice = body.GetProperty("choices")[0];
        JsonElement logprobs = choice.GetProperty("logprobs");
        string[] tokens = logprobs.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).ToArray();
        Assert.Equal(Steps, tokens.Length);
        Assert.Equal(choice.GetProperty("text").GetString(), string.Concat(tokens));
        int offset = 0;
        for (int step = 0; step < Steps; step++)
        {
            var (greedy, all) = Reference.Value[step];
            Assert.Equal(greedy, Hex(tokens[step]));
            double logprob = logprobs.GetProperty("token_logprobs")[step].GetDouble();
            Assert.Equal(ReferenceLogprob(all, greedy), logprob, Tolerance);
            JsonElement top = logprobs.GetProperty("top_logprobs")[step];
            Assert.Equal(5, top.EnumerateObject().Count());
            Assert.Equal(logprob, top.GetProperty(tokens[step]).GetDouble(), 1e-6); // greedy: the top one itself
            double fifth = all.Select(a => a.Logprob).OrderDescending().ElementAt(4);
            foreach (JsonProperty alternative in top.EnumerateObject())
            {
                Assert.Equal(ReferenceLogprob(all, Hex(alternative.Name)), alternative.Value.GetDouble(), Tolerance);
                Assert.True(alternative.Value.GetDouble() >= fifth - Tolerance,
                    $"{alternative.Name} is not in the top 5");
            }
            Assert.Equal(offset, logprobs.GetProperty("text_offset")[step].GetInt32());
            offset += tokens[step].Length;
        }
    }

    /// <summary>Logprobs are the model's, before logit_bias steers the pick (vLLM's raw_logprobs): a forced token
    /// keeps its own low log-probability.</summary>
    [Fact]
    public async Task A_token_forced_by_logit_bias_keeps_the_models_logprob()
    {
        int forced = ServerFixture.Tokenizer.Value.Encode(" sky", false, false, continuation: true)[0];
        var bias = new Dictionary<string, int> { [forced.ToString(CultureInfo.InvariantCulture)] = 100 };
        var (status, body) = await server.PostAsync("/v1/chat/completions", new
        {
            messages = new[] { new { role = "user", content = "Hi" } }, max_tokens = 1, temperature = 0,
            logit_bias = bias, logprobs = true, top_logprobs = 2,
        });
        Assert.Equal(200, status);
        JsonElement entry = body.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content")[0];
        Assert.True(entry.GetProperty("logprob").GetDouble() < entry.GetProperty("top_logprobs")[1]
            .GetProperty("logprob").GetDouble(), "the forced token is not among the model's two likeliest");
    }

    [Fact]
    public async Task Chat_logprobs_stream_the_same_entries_as_the_whole_answer()
    {
        object request(bool stream) => new
        {
            messages = new[] { new { role = "user", content = Prompt } }, max_tokens = Steps, temperature = 0,
            logprobs = true, top_logprobs = 3, stream,
        };
        var (status, whole) = await server.PostAsync("/v1/chat/completions", request(false));
        Assert.Equal(200, status);
        JsonElement message = whole.GetProperty("choices")[0];
        JsonElement[] entries = message.GetProperty("logprobs").GetProperty("content").EnumerateArray().ToArray();
        Assert.Equal(whole.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), entries.Length);
        byte[] joined = entries.SelectMany(e => e.GetProperty("bytes").EnumerateArray().Select(b => (byte)b.GetInt32()))
            .ToArray();
        string content = message.GetProperty("message").GetProperty("content").GetString()!;
        Assert.Equal(content, Encoding.UTF8.GetString(joined));
        foreach (JsonElement e in entries)
        {
            double[] top = e.GetProperty("top_logprobs").EnumerateArray().Select(t => t.GetProperty("logprob")
                .GetDouble()).ToArray();
            Assert.Equal(3, top.Length);
            Assert.Equal(top.OrderDescending(), top);
            Assert.Equal(top[0], e.GetProperty("logprob").GetDouble(), 1e-6);
        }

        var (events, done, _) = await server.StreamAsync("/v1/chat/completions", request(true));
        Assert.True(done);
        List<string> streamed = events.Select(e => e.GetProperty("choices")).Where(c => c.GetArrayLength() > 0)
            .Select(c => c[0].GetProperty("logprobs")).Where(l => l.ValueKind == JsonValueKind.Object)
            .SelectMany(l => l.GetProperty("content").EnumerateArray()).Select(e => e.GetRawText()).ToList();
        Assert.Equal(entries.Select(e => e.GetRawText()), streamed);
    }

    [Theory]
    [InlineData("/v1/chat/completions", """{"messages":[{"role":"user","content":"Hi"}],"top_logprobs":2}""",
        "top_logprobs")]
    [InlineData("/v1/chat/completions",
        """{"messages":[{"role":"user","content":"Hi"}],"logprobs":true,"top_logprobs":21}""", "top_logprobs")]
    [InlineData("/v1/completions", """{"prompt":"Hi","logprobs":21}""", "logprobs")]
    [InlineData("/v1/completions", """{"prompt":"Hi","logprobs":2,"echo":true}""", "echo")]
    public async Task Logprobs_out_of_range_or_with_echo_are_refused_naming_the_field(string path, string body,
        string param)
    {
        var (status, error) = await server.PostRawAsync(path, body);
        Assert.Equal(400, status);
        Assert.Equal(param, error.GetProperty("error").GetProperty("param").GetString());
    }

    private static double ReferenceLogprob(List<(string Bytes, double Logprob)> all, string bytes) =>
        all.Where(a => a.Bytes == bytes).Select(a => a.Logprob).DefaultIfEmpty(double.NaN).Max();

    /// <summary>A token string as OpenAI writes it (text, or bytes:\xNN… for partial characters) as hex bytes.
    /// </summary>
    private static string Hex(string token)
    {
        if (!token.StartsWith("bytes:", StringComparison.Ordinal))
            return Convert.ToHexStringLower(Encoding.UTF8.GetBytes(token));
        return token[6..].Replace("\\x", "", StringComparison.Ordinal);
    }

    private static List<(string, List<(string, double)>)> RunReference()
    {
        int[] ids = ServerFixture.Tokenizer.Value.Encode(Prompt, true, false);
        string script = File.ReadAllText(RepoFiles.Path_("tests", "python", "llama2c_logprobs.py"));
        string output = PyTorch.Run(script, ServerFixture.StoriesPath,
            SharedFiles.Path_("models", "stories260K", "tok512.bin"), string.Join(',', ids),
            Steps.ToString(CultureInfo.InvariantCulture));
        var steps = new List<(string, List<(string, double)>)>();
        foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            JsonElement step = JsonDocument.Parse(line).RootElement;
            List<(string, double)> all = step.GetProperty("logprobs").EnumerateArray()
                .Select(e => (e[0].GetString()!, e[1].GetDouble())).ToList();
            steps.Add((step.GetProperty("greedy").GetString()!, all));
        }
        return steps;
    }
}
