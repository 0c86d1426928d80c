using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Proxy.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace LoPAProxy.Proxy.Tests.Hosting;

/// <summary>Start-up work is done before the listeners open, not on the first request.</summary>
public class StartupWorkTests
{
    [Fact]
    public async Task Every_clusters_foundation_model_is_loaded_before_the_first_request()
    {
        string model = SharedFiles.Path_("models", "stories260K", "stories260K.bin");
        IConfiguration settings = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ReverseProxy:Routes:c:ClusterId"] = "c", ["ReverseProxy:Routes:c:Match:Path"] = "/v1/completions",
            ["ReverseProxy:Clusters:c:Destinations:d1:Address"] = "http://127.0.0.1:9",
            ["LoPA:Clusters:c:Dialect"] = "vllm-completions", ["LoPA:Clusters:c:Model"] = "stories260K",
            ["LoPA:Clusters:c:HiddenSize"] = "64", ["LoPA:Clusters:c:ModelPath"] = model,
            ["LoPA:Store:Path"] = Path.Combine(TempDir.Create(), "lopa.db"),
        }).Build();
        await using WebApplication proxy = ProxyApp.Build(settings, "http://127.0.0.1:0");
        FoundationModels models = proxy.Services.GetRequiredService<FoundationModels>();
        Assert.Empty(models.Loaded); // nothing is loaded while the app is built
        await proxy.StartAsync();
        Assert.Equal([model], models.Loaded);
        Assert.Equal(512, models.Get(model).VocabSize);
    }
}
