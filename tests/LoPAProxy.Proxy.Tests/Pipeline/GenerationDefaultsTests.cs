using System.Net.Http.Json;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Proxy.Tests.Store;

namespace LoPAProxy.Proxy.Tests.Pipeline;

/// <summary>An adapter's generation defaults fill what a request leaves unset — and only that.</summary>
public class GenerationDefaultsTests(ProxyFixture f) : IClassFixture<ProxyFixture>
{
    [Fact]
    public async Task Unset_fields_take_the_adapters_defaults_and_a_clients_own_values_win()
    {
        var defaults = new GenerationDefaults { Temperature = 0, MaxTokens = 3, Stop = ["\n"] };
        LopaAdapter adapter = LopaAdapter.CreateRandom(StoreRig.Adapter(5).Config with { Defaults = defaults }, 5);
        using HttpClient c = f.Client(ProxyFixture.AcmeKey);
        using (HttpResponseMessage upload = await c.PostAsync("/v1/adapters",
            StoreRig.Upload("labelled", "1", adapter)))
        {
            Assert.Equal(201, (int)upload.StatusCode);
        }

        JsonElement atDefaults = await ForwardedAsync(c, new
        {
            model = "stories260K:labelled", messages = new[] { new { role = "user", content = "A fine film." } },
        });
        Assert.Equal(0, atDefaults.GetProperty("temperature").GetDouble());
        Assert.Equal(3, atDefaults.GetProperty("max_tokens").GetInt32());
        Assert.Equal("\n", atDefaults.GetProperty("stop")[0].GetString());

        JsonElement own = await ForwardedAsync(c, new
        {
            model = "stories260K:labelled", messages = new[] { new { role = "user", content = "A fine film." } },
            temperature = 0.7, max_completion_tokens = 9, stop = "END",
        });
        Assert.Equal(0.7, own.GetProperty("temperature").GetDouble());
        Assert.Equal(9, own.GetProperty("max_completion_tokens").GetInt32());
        Assert.False(own.TryGetProperty("max_tokens", out _));
        Assert.Equal("END", own.GetProperty("stop").GetString());

        // Through the Responses API too, and its answer tells the settings that were used.
        using HttpResponseMessage bridged = await c.PostAsJsonAsync("/v1/responses",
            new { model = "stories260K:labelled", input = "A fine film." });
        JsonElement response = JsonDocument.Parse(await bridged.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(0, response.GetProperty("temperature").GetDouble());
        Assert.Equal(3, response.GetProperty("max_output_tokens").GetInt32());

        JsonElement shown = JsonDocument.Parse(await c.GetStringAsync("/v1/adapters/labelled")).RootElement;
        JsonElement listed = shown.GetProperty("config").GetProperty(GenerationDefaults.Key);
        Assert.Equal(0, listed.GetProperty("temperature").GetDouble());
        Assert.Equal(3, listed.GetProperty("max_tokens").GetInt32());
    }

    private async Task<JsonElement> ForwardedAsync(HttpClient c, object body)
    {
        using HttpResponseMessage r = await c.PostAsJsonAsync("/capture/v1/chat/completions", body);
        Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
        return JsonDocument.Parse(f.Captured["/v1/chat/completions"]).RootElement.Clone();
    }
}
