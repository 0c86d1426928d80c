using System.Text;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.Proxy.Requests;

/// <summary>
/// Classifies a request path the way a backend's router will read it, so that no spelling of a generation endpoint
/// skips the LoPA step: percent-escapes are decoded (%2F included), runs of slashes collapse, trailing slashes go,
/// and the endpoint suffix is compared without regard to case. A recognised endpoint is forwarded under its
/// canonical spelling (the prefix before it is kept as sent).
/// </summary>
public readonly record struct RequestRoute(EndpointKind Kind, string CanonicalPath)
{
    private static readonly (string Suffix, EndpointKind Kind)[] Endpoints =
    {
        ("/chat/completions", EndpointKind.Chat),
        ("/completions", EndpointKind.Completions),
        ("/generate", EndpointKind.Generate),
    };

    public bool TakesAdapter => Kind is EndpointKind.Chat or EndpointKind.Completions;

    public static RequestRoute Classify(PathString path)
    {
        string collapsed = Collapse(Decode(path.Value ?? "/"));
        foreach (var (suffix, kind) in Endpoints)
        {
            if (collapsed.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
                return new RequestRoute(kind, CanonicalPrefix(collapsed[..^suffix.Length]) + suffix);
        }
        return new RequestRoute(EndpointKind.Other, collapsed);
    }

    /// <summary>The API version segment in its canonical case ("/V1" → "/v1"); anything before it is kept as
    /// sent.</summary>
    private static string CanonicalPrefix(string prefix) =>
        prefix.EndsWith("/v1", StringComparison.OrdinalIgnoreCase) ? prefix[..^3] + "/v1" : prefix;

    /// <summary>Decodes escapes repeatedly (a double-encoded "%252F" too), at most a few rounds.</summary>
    private static string Decode(string path)
    {
        for (int round = 0; round < 4 && path.Contains('%'); round++)
        {
            string decoded = Uri.UnescapeDataString(path);
            if (decoded == path) break;
            path = decoded;
        }
        return path;
    }

    private static string Collapse(string path)
    {
        var sb = new StringBuilder(path.Length + 1);
        foreach (char c in path)
        {
            bool slash = c is '/' or '\\';
            if (slash && sb.Length > 0 && sb[^1] == '/') continue;
            sb.Append(slash ? '/' : c);
        }
        while (sb.Length > 1 && sb[^1] == '/') sb.Length--;
        if (sb.Length == 0 || sb[0] != '/') sb.Insert(0, '/');
        return sb.ToString();
    }
}
