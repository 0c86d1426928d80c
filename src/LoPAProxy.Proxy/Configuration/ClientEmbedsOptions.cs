namespace LoPAProxy.Proxy.Configuration;

public sealed class ClientEmbedsOptions
{
    /// <summary>Tenants whose own prompt_embeds / input_embeds are accepted (validated strictly); empty:
    /// nobody's.</summary>
    public List<string> AllowedTenants { get; set; } = new();
}
