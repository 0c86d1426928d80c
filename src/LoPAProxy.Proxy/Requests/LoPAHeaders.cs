namespace LoPAProxy.Proxy.Requests;

/// <summary>Request headers of LoPAProxy's own (never forwarded: <see cref="Pipeline.BackendCredentials"/>).</summary>
public static class LoPAHeaders
{
    /// <summary>Names the adapter when the model field names only the base model.</summary>
    public const string Adapter = "X-LoPA-Adapter";
}
