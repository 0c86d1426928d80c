using System.Security.Cryptography;
using System.Text;

namespace LoPAProxy.Proxy.Auth;

/// <summary>The key a caller presents (Authorization: Bearer &lt;key&gt;), parsed once; only its hash is ever
/// compared or stored.</summary>
public readonly record struct BearerKey(string Value)
{
    /// <summary>The key of an Authorization header, or null when it is not a Bearer one.</summary>
    public static BearerKey? FromHeader(string? authorization) =>
        authorization is not null && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? new BearerKey(authorization[7..].Trim())
            : null;

    /// <summary>SHA-256 of the key's UTF-8 bytes: what the store keeps and looks up.</summary>
    public byte[] Hash() => HashOf(Value);

    public static byte[] HashOf(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    /// <summary>Compared in constant time, hash against hash.</summary>
    public bool Matches(byte[] hash) => CryptographicOperations.FixedTimeEquals(Hash(), hash);

    /// <summary>Never the key itself (records print their fields).</summary>
    public override string ToString() => "Bearer ***";
}
