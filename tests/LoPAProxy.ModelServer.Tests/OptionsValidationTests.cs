using Microsoft.Extensions.Options;

namespace LoPAProxy.ModelServer.Tests;

/// <summary>The model server's settings are validated at start-up like the proxy's: every wrong setting named at
/// once, as an options validation failure.</summary>
public class OptionsValidationTests
{
    [Fact]
    public void Every_wrong_setting_is_named_before_anything_loads()
    {
        var options = new ModelServerOptions
        {
            ModelPath = "no-such-model.gguf", MaxConcurrent = 0, Threads = 0, KvCacheType = "q3_k",
        };
        var e = Assert.Throws<OptionsValidationException>(() => ModelServerApp.Build(options));
        Assert.Contains("MaxConcurrent must be 1 to 256", e.Failures);
        Assert.Contains("Threads must be 1 to 1024", e.Failures);
        Assert.Contains("KvCacheType must be f32, f16 or q8_0", e.Failures);
        Assert.True(new ModelServerOptionsValidator().Validate(null, new ModelServerOptions { ModelPath = "m.gguf" })
            .Succeeded);
    }
}
