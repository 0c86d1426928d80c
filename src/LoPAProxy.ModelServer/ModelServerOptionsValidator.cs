using Microsoft.Extensions.Options;

namespace LoPAProxy.ModelServer;

/// <summary>The model server's settings checked at start-up; every failure names the setting.</summary>
public sealed class ModelServerOptionsValidator : IValidateOptions<ModelServerOptions>
{
    public ValidateOptionsResult Validate(string? name, ModelServerOptions options)
    {
        var errors = new List<string>();
        if (options.MaxConcurrent is < 1 or > 256) errors.Add("MaxConcurrent must be 1 to 256");
        if (options.MaxQueued < 0) errors.Add("MaxQueued must be ≥ 0");
        if (options.Threads is < 1 or > 1024) errors.Add("Threads must be 1 to 1024");
        if (options.ContextLength is < 1) errors.Add("ContextLength must be ≥ 1");
        if (options.KvCacheType is not ("f32" or "f16" or "q8_0")) errors.Add("KvCacheType must be f32, f16 or q8_0");
        if (options.MaxTokensLimit < 1) errors.Add("MaxTokensLimit must be ≥ 1");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
