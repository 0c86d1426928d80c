using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Engine.Tests.Support;

/// <summary>The models tests run: stories260K from ../shared (loaded once, read-only), and small random Llamas.</summary>
public static class TestModels
{
    private static readonly Lazy<(LlamaModel Model, SentencePieceBpeTokenizer Tokenizer)> StoriesValue = new(() =>
    {
        var ckpt = Llama2cCheckpoint.Load(SharedFiles.Path_("models", "stories260K", "stories260K.bin"));
        return (LlamaModel.FromLlama2c(ckpt), StoriesTokenizer(ckpt.Config.VocabSize));
    });

    /// <summary>stories260K and its 512-piece tokenizer; shared, so never mutate it (copy the model to change its GEMM backend).</summary>
    public static (LlamaModel Model, SentencePieceBpeTokenizer Tokenizer) Stories => StoriesValue.Value;

    public static SentencePieceBpeTokenizer StoriesTokenizer(int vocab = 512) =>
        SentencePieceBpeTokenizer.Load(SharedFiles.Path_("models", "stories260K", "tok512.bin"), vocab);

    /// <summary>A random decoder of shape <paramref name="c"/>: weights uniform in ±scale (embedding ±1), norm weights near 1.</summary>
    public static LlamaModel RandomLlama(Random rng, LlamaConfig c, float scale = 0.3f)
    {
        float[] R(int n, float s) => Rand.Floats(rng, n, s);
        float[] Norm(int n) => R(n, 0.2f).Select(x => x + 1f).ToArray();
        var layers = Enumerable.Range(0, c.Layers).Select(_ => new LlamaLayer(Norm(c.Dim), R(c.QDim * c.Dim, scale), R(c.KvDim * c.Dim, scale), R(c.KvDim * c.Dim, scale),
            R(c.Dim * c.QDim, scale), Norm(c.Dim), R(c.HiddenDim * c.Dim, scale), R(c.Dim * c.HiddenDim, scale), R(c.HiddenDim * c.Dim, scale))).ToList();
        return new LlamaModel(c, R(c.VocabSize * c.Dim, 1f), layers, Norm(c.Dim), R(c.VocabSize * c.Dim, scale));
    }
}
