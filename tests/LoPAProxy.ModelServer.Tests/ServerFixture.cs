using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Formats.Torch;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Engine.Tokenizers;
using LoPAProxy.ModelServer.Generation;
using Microsoft.AspNetCore.Builder;

namespace LoPAProxy.ModelServer.Tests;

/// <summary>A real server on 127.0.0.1 (a free port) serving stories260K, shared by a test class.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public static readonly string StoriesPath = SharedFiles.Path_("models", "stories260K", "stories260K.bin");

    /// <summary>stories260K on llama.cpp, converted to GGUF into a scratch cache once per test run.</summary>
    public static readonly Lazy<ServedModel> Stories = new(() => ServedModel.Load(new ModelServerOptions
    {
        ModelPath = StoriesPath, ModelCacheDirectory = TempDir.Create(),
    }));

    /// <summary>The independent references: run.c's tokenizer over tok512.bin, and the checkpoint's own embedding
    /// table [vocab, dim] read by the llama2.c reader (not through llama.cpp).</summary>
    public static readonly Lazy<SentencePieceBpeTokenizer> Tokenizer = new(() =>
        SentencePieceBpeTokenizer.Load(SharedFiles.Path_("models", "stories260K", "tok512.bin"), 512));

    public static readonly Lazy<float[]> Embeddings = new(() =>
        Llama2cCheckpoint.Load(StoriesPath).Weights.TokenEmbedding.ToArray());

    /// <summary>Embedding rows [tokens, 64] of <paramref name="tokens"/> from the checkpoint.</summary>
    public static float[] EmbeddingRows(int[] tokens) =>
        tokens.SelectMany(t => Embeddings.Value.AsSpan(t * 64, 64).ToArray()).ToArray();

    public WebApplication App { get; private set; } = null!;
    public HttpClient Client { get; private set; } = null!;
    public ModelServerOptions Options { get; }

    public ServerFixture() : this(new ModelServerOptions { ModelPath = "unused", Port = 0 }) { }

    internal ServerFixture(ModelServerOptions options) { Options = options; }

    public async Task InitializeAsync()
    {
        App = ModelServerApp.Build(Options, Stories.Value);
        await App.StartAsync();
        Client = new HttpClient { BaseAddress = new Uri(App.Urls.First()), Timeout = TimeSpan.FromSeconds(60) };
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }

    public async Task<(int Status, JsonElement Body)> PostAsync(string path, object body)
    {
        using var response = await Client.PostAsJsonAsync(path, body);
        string text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    public async Task<(int Status, JsonElement Body)> PostRawAsync(string path, string body)
    {
        using var response = await Client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        return ((int)response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    /// <summary>Reads an SSE response: the JSON of every data event, and whether it ended with [DONE].</summary>
    public async Task<(List<JsonElement> Events, bool Done, string ContentType)> StreamAsync(string path, object body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        using var response = await Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(200, (int)response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var events = new List<JsonElement>();
        bool done = false;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
            string data = line[6..];
            if (data == "[DONE]") { done = true; continue; }
            events.Add(JsonDocument.Parse(data).RootElement.Clone());
        }
        return (events, done, response.Content.Headers.ContentType?.MediaType ?? "");
    }

    /// <summary>The model's own embedding rows of <paramref name="tokens"/>, as base64 of torch.save.</summary>
    public static string EmbedsBase64(int[] tokens, DType dtype = DType.F32)
    {
        Tensor rows = Tensor.FromArray(EmbeddingRows(tokens), tokens.Length, 64);
        return Convert.ToBase64String(TorchFile.SaveTensor(rows, dtype));
    }
}
