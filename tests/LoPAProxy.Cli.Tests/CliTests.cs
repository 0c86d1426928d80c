using System.Text.Json;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Cli.Tests;

public class CliTests
{
    private static string Stories => SharedFiles.Path_("models", "stories260K", "stories260K.bin");

    [Fact]
    public void Generate_prints_run_cs_greedy_text()
    {
        // run.c's steps=48 count BOS and the prompt: 48 − P + 1 new tokens.
        var tok = LoPAProxy.Engine.Tokenizers.SentencePieceBpeTokenizer.Load(SharedFiles.Path_("models", "stories260K", "tok512.bin"), 512);
        int newTokens = 48 - tok.Encode("Tom had a red kite", true, false).Length + 1;
        using var lopa = new LopaProcess("generate", "--model", Stories, "--prompt", "Tom had a red kite", "--max-tokens", newTokens.ToString());
        Assert.Equal(0, lopa.WaitForExit());
        Assert.Equal("Tom had a red kite. He liked to play with his toys and run around the room. He liked to play with his toys and run arou", lopa.Stdout.Trim());
    }

    [Fact]
    public async Task Serve_model_answers_on_a_real_socket_and_stops_on_sigterm()
    {
        using var lopa = new LopaProcess("serve-model", "--model", Stories, "--port", "0");
        string line = lopa.WaitForLine(l => l.StartsWith("serving stories260K at http://127.0.0.1:", StringComparison.Ordinal));
        string url = line[(line.IndexOf("http", StringComparison.Ordinal))..].Trim();
        using var client = new HttpClient { BaseAddress = new Uri(url) };
        using var response = await client.PostAsync("/v1/completions", System.Net.Http.Json.JsonContent.Create(new { prompt = "Tom had a red kite", max_tokens = 6, temperature = 0 }));
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        Assert.StartsWith(". He liked", JsonDocument.Parse(body).RootElement.GetProperty("choices")[0].GetProperty("text").GetString());
        lopa.Terminate();
        Assert.Equal(0, lopa.WaitForExit(30));
    }

    [Fact]
    public void Up_says_not_yet_and_fails_and_bad_arguments_are_reported()
    {
        using var up = new LopaProcess("up");
        Assert.Equal(3, up.WaitForExit());
        Assert.Contains("not yet", up.Stderr);
        using var bad = new LopaProcess("generate", "--model", "/nonexistent/model.bin");
        Assert.NotEqual(0, bad.WaitForExit());
        Assert.StartsWith("lopa: model not found", bad.Stderr);
        Assert.DoesNotContain("   at ", bad.Stderr); // a message, not a stack trace
    }
}
