using System.Net.Http.Json;
using System.Text.Json;
using LoPAProxy.Engine.Formats.Gguf;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.ModelServer.Generation;

namespace LoPAProxy.ModelServer.Tests;

/// <summary>A GGUF's own chat template (tokenizer.chat_template) is applied by llama.cpp, and embeddings parts keep
/// their place inside it.</summary>
public class ChatTemplateTests
{
    private const string ChatMl = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + " +
        "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}" +
        "{{ '<|im_start|>assistant\\n' }}{% endif %}";

    [Fact]
    public async Task The_models_chatml_template_renders_the_prompt_and_an_embeds_part_stands_in_place()
    {
        string gguf = Path.Combine(TempDir.Create(), "stories-chatml.gguf");
        Llama2cToGguf.Convert(ServerFixture.StoriesPath, SharedFiles.Path_("models", "stories260K", "tok512.bin"), gguf,
            chatTemplate: ChatMl);
        using ServedModel model = ServedModel.Load(new ModelServerOptions { ModelPath = gguf });
        Assert.Equal(ChatMl, model.ChatTemplate);
        await using var app = ModelServerApp.Build(new ModelServerOptions { ModelPath = gguf, Port = 0 }, model);
        await app.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };

        // The whole rendered conversation as a completions prompt gives the same tokens, so the same answer.
        string rendered = "<|im_start|>user\nTom had a red kite<|im_end|>\n<|im_start|>assistant\n";
        JsonElement viaText = await Post(client, "/v1/completions", new
        {
            prompt = rendered, max_tokens = 8,
            temperature = 0
        });
        JsonElement viaChat = await Post(client, "/v1/chat/completions", new
        {
            messages = new[] { new { role = "user", content = "Tom had a red kite" } }, max_tokens = 8, temperature = 0,
        });
        int promptTokens = ServerFixture.Tokenizer.Value.Encode(rendered, true, false).Length;
        Assert.Equal(promptTokens, viaChat.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(viaText.GetProperty("choices")[0].GetProperty("text").GetString(),
            viaChat.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());

        // An embeddings part inside the template: its 3 rows replace the words " a red" (3 tokens) where they stood.
        int[] words = ServerFixture.Tokenizer.Value.Encode(" a red", false, false, continuation: true);
        var parts = new object[]
        {
            new { type = "text", text = "Tom had" },
            new { type = "prompt_embeds", data = ServerFixture.EmbedsBase64(words) },
            new { type = "text", text = " kite" },
        };
        JsonElement mixed = await Post(client, "/v1/chat/completions", new
        {
            messages = new[] { new { role = "user", content = parts } }, max_tokens = 8, temperature = 0,
        });
        Assert.Equal(promptTokens, mixed.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(viaChat.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(),
            mixed.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    private static async Task<JsonElement> Post(HttpClient client, string path, object body)
    {
        using var response = await client.PostAsJsonAsync(path, body);
        string json = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, json);
        return JsonDocument.Parse(json).RootElement.Clone();
    }
}
