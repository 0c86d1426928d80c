using LoPAProxy.Proxy.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.Tests.Configuration;

/// <summary>Options enums are bound by the configuration binder from their documented spelling; a misspelt one
/// stops the start naming the key, the value and the valid names.</summary>
public class TypedOptionsTests
{
    private static LoPAOptions Bind(Dictionary<string, string?> settings)
    {
        IConfiguration config = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        return config.GetSection("LoPA").Get<LoPAOptions>()!;
    }

    [Fact]
    public void Documented_spellings_bind_to_the_enums()
    {
        LoPAOptions o = Bind(new()
        {
            ["LoPA:InstanceText"] = "all-user", ["LoPA:LogFormat"] = "JSON",
            ["LoPA:Clusters:c:WireDType"] = "bf16", ["LoPA:Clusters:c:EmbedsPosition"] = "after",
            ["LoPA:Store:Kind"] = "postgres", ["LoPA:RateLimits:Counters"] = "local",
            ["LoPA:RateLimits:WhenCountersDown"] = "closed",
        });
        Assert.Equal(InstanceTextSource.AllUser, o.InstanceText);
        Assert.Equal(LogFormat.Json, o.LogFormat);
        Assert.Equal(WireDType.Bf16, o.Clusters["c"].WireDType);
        Assert.Equal(EmbedsPosition.After, o.Clusters["c"].EmbedsPosition);
        Assert.Equal(StoreKind.Postgres, o.Store.Kind);
        Assert.Equal(CountersKind.Local, o.RateLimits.Counters);
        Assert.Equal(CountersDownPolicy.Closed, o.RateLimits.WhenCountersDown);
        Assert.Equal(CountersKind.Postgres, new RateLimitOptions().EffectiveCounters(o.Store));
        Assert.Equal("last-user", OptionNames.Of(InstanceTextSource.LastUser));
    }

    [Theory]
    [InlineData("LoPA:Clusters:chat:WireDType", "fp17", "fp32, bf16, fp16")]
    [InlineData("LoPA:InstanceText", "every-user", "last-user, all-user")]
    [InlineData("LoPA:RateLimits:WhenCountersDown", "ajar", "open, closed")]
    public void A_misspelt_value_stops_the_start_naming_key_value_and_choices(string key, string value,
        string choices)
    {
        IConfiguration config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["LoPA:Clusters:chat:Model"] = "m", ["LoPA:Clusters:chat:HiddenSize"] = "64", [key] = value,
        }).Build();
        var e = Assert.Throws<OptionsValidationException>(() => ProxyApp.Build(config, "http://127.0.0.1:0"));
        string message = string.Join("\n", e.Failures);
        Assert.Contains(key, message);
        Assert.Contains($"'{value}'", message);
        Assert.Contains(choices, message);
    }
}
