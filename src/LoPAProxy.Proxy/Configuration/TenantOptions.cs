namespace LoPAProxy.Proxy.Configuration;

public sealed class TenantOptions
{
    public List<string> ApiKeys { get; set; } = new();
}
