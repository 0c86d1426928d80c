using LoPAProxy.Core.FoundationModels;
using LoPAProxy.Engine.Formats;
using LoPAProxy.Engine.Formats.Embeddings;
using LoPAProxy.Engine.Formats.Gguf;
using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Core.Tests.FoundationModels;

/// <summary>The vocabulary the proxy reads is the same whichever file holds the model.</summary>
public class FoundationModelVocabularyTests
{
    private static readonly string Checkpoint = SharedFiles.Path_("models", "stories260K", "stories260K.bin");
    private static readonly string[] Texts =
        { "Tom had a red kite", "Once upon a time, Lily's mom said \"hi\"!", "naïve 😀 日本", " two  spaces\nand a line" };

    [Fact]
    public void A_llama2c_checkpoint_and_its_gguf_give_the_same_tokenizer_and_rows()
    {
        string gguf = Path.Combine(TempDir.Create(), "stories.gguf");
        Llama2cToGguf.Convert(Checkpoint, SharedFiles.Path_("models", "stories260K", "tok512.bin"), gguf);
        var fromBin = FoundationModelVocabulary.Load(Checkpoint);
        var fromGguf = FoundationModelVocabulary.Load(gguf);
        Assert.Equal(64, fromGguf.Dim);
        Assert.Equal(512, fromGguf.ContextLength);
        Assert.Equal(Llama2cCheckpoint.Load(Checkpoint).Weights.TokenEmbedding.ToArray(), fromBin.Table.ReadAll());
        Assert.Equal(fromBin.Table.ReadAll(), fromGguf.Table.ReadAll());
        var runC = SentencePieceBpeTokenizer.Load(SharedFiles.Path_("models", "stories260K", "tok512.bin"), 512);
        foreach (string text in Texts)
        {
            Assert.Equal(runC.Encode(text, true, false), fromBin.Tokenizer.Encode(text, true, false));
            Assert.Equal(runC.Encode(text, true, false), fromGguf.Tokenizer.Encode(text, true, false));
            Assert.Equal(runC.Encode(text, false, false, continuation: true),
                fromGguf.Tokenizer.Encode(text, false, false, continuation: true));
        }
    }

    [Fact]
    public void A_gguf_with_a_bpe_vocabulary_needs_its_tokenizer_json_and_says_so()
    {
        string gguf = Path.Combine(TempDir.Create(), "bpe.gguf");
        new GgufWriter()
            .Add("general.architecture", "qwen2")
            .Add("tokenizer.ggml.model", "gpt2")
            .Add("tokenizer.ggml.tokens", new[] { "a", "b" })
            .AddTensor("token_embd.weight", new float[8], 4, 2)
            .Write(gguf);
        var e = Assert.Throws<TensorFileException>(() => FoundationModelVocabulary.Load(gguf));
        Assert.Contains("tokenizer.json", e.Message);
    }
}
