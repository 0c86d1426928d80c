using System.Reflection;

namespace LoPAProxy.Engine.Tests;

/// <summary>Layering: engine ◀ core ◀ apps. Nothing points upward.</summary>
public class ArchitectureTests
{
    private static string[] ProjectRefs(Assembly a) => a.GetReferencedAssemblies().Select(r => r.Name!).Where(n => n.StartsWith("LoPAProxy", StringComparison.Ordinal) || n == "lopa").ToArray();

    [Fact]
    public void Engine_references_no_other_project_and_core_only_the_engine()
    {
        Assert.Empty(ProjectRefs(typeof(LoPAProxy.Engine.Tensors.Tensor).Assembly));
        Assembly core = Assembly.Load("LoPAProxy.Core");
        Assert.All(ProjectRefs(core), n => Assert.Equal("LoPAProxy.Engine", n));
    }
}
