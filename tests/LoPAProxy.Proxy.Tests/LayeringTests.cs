using System.Reflection;

namespace LoPAProxy.Proxy.Tests;

/// <summary>
/// Layering (DESIGN §1) and native runtimes only where needed: formats/tokenizers (Engine) ◀ core (Core, OpenAi) ◀
/// apps (Proxy, ModelServer, Training, CLI). Nothing points upward, no app references another, the proxy never loads
/// libtorch or llama.cpp, the model server never loads libtorch, the trainer never needs Kestrel.
/// </summary>
public class LayeringTests
{
    private static readonly string[] Apps =
        { "LoPAProxy.Proxy", "LoPAProxy.ModelServer", "LoPAProxy.Training", "lopa" };

    [Theory]
    [InlineData("LoPAProxy.Engine")]
    [InlineData("LoPAProxy.Core")]
    [InlineData("LoPAProxy.OpenAi")]
    public void Lower_layers_reference_no_app(string name)
    {
        string[] references = References(name);
        foreach (string app in Apps) Assert.DoesNotContain(app, references);
        Assert.DoesNotContain("TorchSharp", references);
        Assert.DoesNotContain("LLamaSharp", references);
    }

    [Fact]
    public void The_proxy_references_neither_another_app_nor_libtorch_nor_llama_cpp()
    {
        string[] references = References("LoPAProxy.Proxy");
        foreach (string app in Apps.Where(a => a != "LoPAProxy.Proxy")) Assert.DoesNotContain(app, references);
        Assert.DoesNotContain("TorchSharp", references);
        Assert.DoesNotContain("LLamaSharp", references);
        Assert.Contains("LLamaSharp", References("LoPAProxy.ModelServer")); // the name checked above is the real one
    }

    [Fact]
    public void The_model_server_and_trainer_keep_to_their_own_runtime()
    {
        string[] server = References("LoPAProxy.ModelServer");
        Assert.DoesNotContain("TorchSharp", server);
        Assert.DoesNotContain("LoPAProxy.Proxy", server);
        Assert.DoesNotContain("LoPAProxy.Training", server);
        string[] trainer = References("LoPAProxy.Training");
        Assert.DoesNotContain("LLamaSharp", trainer);
        Assert.DoesNotContain("LoPAProxy.ModelServer", trainer);
        Assert.DoesNotContain("Microsoft.AspNetCore.Server.Kestrel.Core", trainer);
    }

    private static string[] References(string name) =>
        Assembly.Load(name).GetReferencedAssemblies().Select(r => r.Name!).ToArray();
}
