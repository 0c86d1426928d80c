using System.Text.Json;
using LLama.Native;
using LoPAProxy.Core.FoundationModels;
using LoPAProxy.Engine.Formats.Embeddings;
using LoPAProxy.Engine.Formats.Gguf;
using LoPAProxy.Engine.Formats.Torch;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.ModelServer.Generation;

namespace LoPAProxy.ModelServer.Tests;

/// <summary>
/// Quantised GGUF files made by llama.cpp's own quantiser: the server runs them, and the proxy's reader decodes their
/// token-embedding tables exactly as llama.cpp does — rows decoded by our reader and sent as prompt_embeds continue
/// exactly like the token ids, whose rows llama.cpp decodes itself. stories260K's FFN width (172) is not a whole
/// number of 32-blocks, so the model here is a random llama2.c checkpoint of quantisable shape over tok512.
/// </summary>
public class QuantizedModelTests
{
    private static readonly Lazy<(string Gguf, float[] Embeddings)> Random = new(WriteRandomModel);

    /// <summary>dim 64, FFN 192, 2 layers, 8 heads (4 KV), vocab 512, context 256; N(0, 0.1) weights, unit
    /// norms.</summary>
    private static (string, float[]) WriteRandomModel()
    {
        int[] header = { 64, 192, 2, 8, 4, 512, 256 };
        int dim = 64, hidden = 192, layers = 2, kv = 32, vocab = 512, seq = 256, headDim = 8;
        var random = new Random(7);
        var floats = new List<float>();
        void Normal(long n)
        {
            for (long i = 0; i < n; i++)
            {
                floats.Add((float)(0.1 * Math.Sqrt(-2 * Math.Log(1 - random.NextDouble()))
                * Math.Cos(2 * Math.PI * random.NextDouble())));
            }
        }
        void Ones(long n) => floats.AddRange(Enumerable.Repeat(1f, (int)n));
        Normal(vocab * dim);
        Ones(layers * dim);
        Normal(layers * dim * dim);
        Normal(2L * layers * kv * dim);
        Normal(layers * dim * dim);
        Ones(layers * dim);
        Normal(3L * layers * hidden * dim);
        Ones(dim);
        floats.AddRange(new float[seq * headDim]); // legacy freq_cis, skipped by readers
        string directory = TempDir.Create(), checkpoint = Path.Combine(directory, "random.bin");
        using (var w = new BinaryWriter(File.Create(checkpoint)))
        {
            foreach (int h in header) w.Write(h);
            foreach (float f in floats) w.Write(f);
        }
        string gguf = Path.Combine(directory, "random.gguf");
        Llama2cToGguf.Convert(checkpoint, SharedFiles.Path_("models", "stories260K", "tok512.bin"), gguf);
        return (gguf, floats.Take(vocab * dim).ToArray());
    }

    [Theory]
    [InlineData(LLamaFtype.MOSTLY_Q8_0, GgmlType.Q8_0)]
    [InlineData(LLamaFtype.MOSTLY_Q4_0, GgmlType.Q4_0)]
    public async Task A_quantised_model_serves_and_its_embedding_rows_decode_as_llama_cpp_decodes_them(
        LLamaFtype ftype, GgmlType expected)
    {
        string quantised = Path.Combine(TempDir.Create(), $"stories-{expected}.gguf");
        LlamaCppRuntime.Initialise();
        var parameters = LLamaModelQuantizeParams.Default();
        parameters.ftype = ftype;
        parameters.nthread = 1;
        parameters.token_embedding_type = expected == GgmlType.Q8_0 ? GGMLType.GGML_TYPE_Q8_0 : GGMLType.GGML_TYPE_Q4_0;
        Assert.Equal(0u, NativeApi.llama_model_quantize(Random.Value.Gguf, quantised, ref parameters));
        Assert.Equal(expected, GgufFile.Open(quantised).Find("token_embd.weight")!.Type);

        var vocabulary = FoundationModelVocabulary.Load(quantised);
        float[] exact = Random.Value.Embeddings;
        float worst = exact.Zip(vocabulary.Table.ReadAll(), (a, b) => MathF.Abs(a - b)).Max();
        Assert.InRange(worst, 1e-6f, expected == GgmlType.Q8_0 ? 0.005f : 0.1f); // rounded, but the same table
        string text = "Lily and Ben went to the park";
        int[] ids = ServerFixture.Tokenizer.Value.Encode(text, true, false);
        Assert.Equal(ids, vocabulary.Tokenizer.Encode(text, true, false));

        using ServedModel model = ServedModel.Load(new ModelServerOptions { ModelPath = quantised });
        await using var app = ModelServerApp.Build(new ModelServerOptions { ModelPath = quantised, Port = 0 }, model);
        await app.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
        float[] rows = ids.SelectMany(t => vocabulary.Table.ReadAll().AsSpan(t * 64, 64).ToArray()).ToArray();
        string embeds = Convert.ToBase64String(TorchFile.SaveTensor(Tensor.FromArray(rows, ids.Length, 64)));
        string viaTokens = await Complete(client, new
        {
            prompt = ids, max_tokens = 40, temperature = 0,
            ignore_eos = true
        });
        string viaEmbeds = await Complete(client, new
        {
            prompt_embeds = embeds, max_tokens = 40, temperature = 0,
            ignore_eos = true
        });
        Assert.False(string.IsNullOrEmpty(viaTokens));
        Assert.Equal(viaTokens, viaEmbeds);
    }

    private static async Task<string> Complete(HttpClient client, object body)
    {
        using var response = await client.PostAsync("/v1/completions", System.Net.Http.Json.JsonContent.Create(body));
        string json = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, json);
        return JsonDocument.Parse(json).RootElement.GetProperty("choices")[0].GetProperty("text").GetString()!;
    }
}
