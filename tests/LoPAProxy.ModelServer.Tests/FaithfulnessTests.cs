using System.Text.Json;
using LoPAProxy.Engine.Formats.Gguf;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.ModelServer.Generation;

namespace LoPAProxy.ModelServer.Tests;

/// <summary>
/// llama.cpp serving stories260K against llama2.c's run.c (greedy reference outputs in ../shared/models): an F32 KV
/// cache and flash attention off (the server's defaults) are what make the text equal byte for byte.
/// </summary>
public class FaithfulnessTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static string Text(JsonElement body) => body.GetProperty("choices")[0].GetProperty("text").GetString()!;

    [Fact]
    public async Task Greedy_text_from_bos_equals_run_c_for_200_steps()
    {
        string reference = File.ReadAllText(SharedFiles.Path_("models", "stories260K", "reference-bos-200.txt"))
            .TrimEnd('\n');
        // run.c's 200 steps forward positions 0-199 and print what each predicts: 200 new tokens after BOS.
        var (status, body) = await server.PostAsync("/v1/completions",
            new { prompt = new[] { 1 }, max_tokens = 200, temperature = 0 });
        Assert.Equal(200, status);
        Assert.Equal(reference, Text(body));
    }

    [Fact]
    public async Task Prompt_embeds_equal_to_the_token_rows_continue_like_the_tokens_for_60_tokens()
    {
        int[] prompt = ServerFixture.Tokenizer.Value.Encode("Lily and Ben went to the park", true, false);
        var (_, viaTokens) = await server.PostAsync("/v1/completions",
            new { prompt, max_tokens = 60, temperature = 0, ignore_eos = true });
        var (status, viaEmbeds) = await server.PostAsync("/v1/completions",
            new
            {
                prompt_embeds = ServerFixture.EmbedsBase64(prompt), max_tokens = 60, temperature = 0,
                ignore_eos = true
            });
        Assert.Equal(200, status);
        Assert.Equal(60, viaEmbeds.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(Text(viaTokens), Text(viaEmbeds));
    }

    [Fact]
    public void The_converted_gguf_holds_the_checkpoint_and_run_cs_vocabulary()
    {
        GgufFile gguf = GgufFile.Open(ServerFixture.Stories.Value.GgufPath);
        Assert.Equal("llama", gguf.GetString("general.architecture"));
        Assert.Equal(64, gguf.GetInteger("llama.embedding_length"));
        Assert.Equal(512, gguf.GetInteger("llama.context_length"));
        Assert.Equal(5 * 9 + 2, gguf.Tensors.Count); // tied classifier: no output.weight
        string[] tokens = gguf.GetArray<string>("tokenizer.ggml.tokens")!;
        Assert.Equal(512, tokens.Length);
        Assert.Equal(new[] { "<unk>", "<s>", "</s>", "<0x00>" }, tokens[..4]);
        // Embedding rows read back from the GGUF equal the checkpoint's, bit for bit.
        Assert.Equal(ServerFixture.Embeddings.Value, gguf.ReadFloat32("token_embd.weight"));
        // Tokenization: llama.cpp over the converted vocabulary equals run.c's tokenizer.
        foreach (string text in new[] { "Tom had a red kite", "Once upon a time, Lily's mom said \"hi\"!",
            "naïve 😀 日本" })
        {
            Assert.Equal(ServerFixture.Tokenizer.Value.Encode(text, true, false),
                ServerFixture.Stories.Value.Tokenize(text, true));
        }
    }

    [Fact]
    public void A_huggingface_directory_is_refused_with_the_converter_to_use()
    {
        var e = Assert.Throws<InvalidOperationException>(() => ModelFiles.ResolveGguf(TempDir.Create()));
        Assert.Contains("convert_hf_to_gguf.py", e.Message);
        Assert.Throws<FileNotFoundException>(() => ModelFiles.ResolveGguf("/nonexistent/model.gguf"));
    }
}
