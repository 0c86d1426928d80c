using System.Reflection;

namespace LoPAProxy.Proxy.Tests;

/// <summary>Native runtimes live only where needed: the proxy and the model server (and the layers under them) never
/// reference the trainer or TorchSharp, so they never load libtorch.</summary>
public class LayeringTests
{
    [Theory]
    [InlineData("LoPAProxy.Proxy")]
    [InlineData("LoPAProxy.ModelServer")]
    [InlineData("LoPAProxy.Core")]
    [InlineData("LoPAProxy.Engine")]
    public void Serving_assemblies_do_not_reference_the_trainer_or_libtorch(string name)
    {
        string[] references = Assembly.Load(name).GetReferencedAssemblies().Select(r => r.Name!).ToArray();
        Assert.DoesNotContain("LoPAProxy.Training", references);
        Assert.DoesNotContain("TorchSharp", references);
        Assert.DoesNotContain("lopa", references);
    }
}
