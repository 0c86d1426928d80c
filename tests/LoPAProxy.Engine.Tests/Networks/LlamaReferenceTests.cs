using System.Text;
using LoPAProxy.Engine.Blas;
using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Engine.Tokenizers;
using LoPAProxy.Engine.Tensors;

namespace LoPAProxy.Engine.Tests.Networks;

/// <summary>stories260K against the C reference (llama2.c run.c, greedy) outputs in ../shared/models/README.md.</summary>
public class LlamaReferenceTests
{
    private static (LlamaModel Model, SentencePieceBpeTokenizer Tokenizer) Stories => TestModels.Stories;

    /// <summary>run.c's generate(): steps counts positions including BOS and the prompt; output includes the prompt.</summary>
    internal static string RunC(LlamaModel model, ITokenizer tokenizer, string prompt, int steps)
    {
        int[] promptTokens = tokenizer.Encode(prompt, addBos: true, addEos: false);
        var generator = new LlamaGenerator(model);
        var text = new StringBuilder();
        var stream = new TextStream(tokenizer).After(promptTokens[0]);
        foreach (int t in promptTokens.Skip(1)) text.Append(stream.Push(t));
        int newTokens = steps - promptTokens.Length + 1;
        foreach (int t in generator.Generate(generator.EmbedTokens(promptTokens), promptTokens.Length, newTokens, new Sampler(tokenizer.VocabSize), new HashSet<int> { tokenizer.BosId }))
            text.Append(stream.Push(t));
        return text.ToString();
    }

    [Theory]
    [InlineData("managed")]
    [InlineData("openblas")]
    public void Greedy_generation_reproduces_run_c_byte_for_byte(string backend)
    {
        var (model, tok) = Stories;
        var m = new LlamaModel(model.Config, model.TokenEmbedding, model.Layers, model.FinalNorm, model.Classifier) { Gemm = Blas.GemmTests.Backend(backend) };
        Assert.Equal("Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to",
            RunC(m, tok, "", 48));
        Assert.Equal("Tom had a red kite. He liked to play with his toys and run around the room. He liked to play with his toys and run arou",
            RunC(m, tok, "Tom had a red kite", 48));
        string reference = File.ReadAllText(SharedFiles.Path_("models", "stories260K", "reference-bos-200.txt")).TrimEnd('\n');
        Assert.Equal(reference, RunC(m, tok, "", 200));
    }

    [Fact]
    public void Prompt_embeds_equal_to_the_token_embedding_rows_give_the_same_continuation()
    {
        var (model, tok) = Stories;
        var gen = new LlamaGenerator(model);
        int[] prompt = tok.Encode("Lily and Ben went to the park", addBos: true, addEos: false);
        var stop = new HashSet<int> { tok.BosId, tok.EosId };
        int[] viaTokens = gen.Generate(gen.EmbedTokens(prompt), prompt.Length, 60, new Sampler(tok.VocabSize), stop).ToArray();
        // Embedding rows serialised the way a client sends them (torch.save, base64) and read back.
        byte[] file = LoPAProxy.Engine.Formats.Torch.TorchFile.SaveTensor(Tensor.FromArray(gen.EmbedTokens(prompt), prompt.Length, model.Config.Dim));
        float[] rows = LoPAProxy.Engine.Formats.Torch.TorchFile.LoadTensor(file, "embeds.pt").Values.ToArray();
        int[] viaEmbeds = gen.Generate(rows, prompt.Length, 60, new Sampler(tok.VocabSize), stop).ToArray();
        Assert.Equal(60, viaTokens.Length);
        Assert.Equal(viaTokens, viaEmbeds);
    }

    [Fact]
    public void Prefill_in_one_batch_matches_token_by_token_decoding()
    {
        var (model, tok) = Stories;
        int[] prompt = tok.Encode("The little dog was happy because", addBos: true, addEos: false);
        var batched = new float[model.Config.VocabSize];
        var state = model.NewState();
        var gen = new LlamaGenerator(model);
        model.Forward(gen.EmbedTokens(prompt), prompt.Length, state, batched);
        var stepwise = new float[model.Config.VocabSize];
        var state2 = model.NewState();
        foreach (int t in prompt) model.Forward(gen.EmbedTokens([t]), 1, state2, stepwise);
        Rand.AssertClose(stepwise, batched, 1e-4f, "logits");
        Assert.Equal(Sampler.ArgMax(stepwise), Sampler.ArgMax(batched));
    }
}
