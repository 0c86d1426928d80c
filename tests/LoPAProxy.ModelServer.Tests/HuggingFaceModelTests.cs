using LoPAProxy.Engine.Tests.Networks;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Engine.Tests.Tokenizers;
using LoPAProxy.Engine.Tokenizers;
using LoPAProxy.ModelServer.Generation;

namespace LoPAProxy.ModelServer.Tests;

public class HuggingFaceModelTests
{
    [Fact]
    public async Task Serves_a_huggingface_directory_with_its_tokenizer_json()
    {
        // A random Llama in HF layout sized for the real Llama-3 vocabulary, plus that tokenizer.json.
        string dir = TempDir.Create();
        PyTorch.Run(HuggingFaceLlamaTests.Reference, dir, "3", "500000", "1", "1,2,3", "128256");
        File.Copy(HfBpeTokenizerTests.Llama3Json, Path.Combine(dir, "tokenizer.json"));
        ServedModel served = ServedModel.Load(dir, name: "tiny-llama3");
        Assert.IsType<HfBpeTokenizer>(served.Tokenizer);
        Assert.Equal(new[] { 128000, 9906, 1917 }, served.Tokenizer.Encode("Hello world", true, false));

        await using var app = ModelServerApp.Build(new ModelServerOptions { ModelPath = dir, Port = 0 }, served);
        await app.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
        using var text = await client.PostAsync("/v1/completions", System.Net.Http.Json.JsonContent.Create(new { prompt = "Hello world", max_tokens = 5, temperature = 0 }));
        string body = await text.Content.ReadAsStringAsync();
        Assert.True(text.IsSuccessStatusCode, body);
        int[] ids = served.Tokenizer.Encode("Hello world", true, false);
        string b64 = Convert.ToBase64String(LoPAProxy.Engine.Formats.Torch.TorchFile.SaveTensor(
            LoPAProxy.Engine.Tensors.Tensor.FromArray(served.Generator.EmbedTokens(ids), ids.Length, served.HiddenSize)));
        using var embeds = await client.PostAsync("/v1/completions", System.Net.Http.Json.JsonContent.Create(new { prompt_embeds = b64, max_tokens = 5, temperature = 0 }));
        string viaEmbeds = await embeds.Content.ReadAsStringAsync();
        string Choice(string json) => System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty("choices")[0].GetProperty("text").GetString()!;
        Assert.Equal(Choice(body), Choice(viaEmbeds));
        await app.StopAsync();
    }
}
