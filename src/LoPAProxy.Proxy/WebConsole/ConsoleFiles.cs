using System.Reflection;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LoPAProxy.Proxy.WebConsole;

/// <summary>
/// The web console's static files, embedded in this assembly (WebConsole/wwwroot) and served at /console without a
/// key: they hold no data — every figure comes from the APIs, called with the key the user signs in with. A strict
/// content security policy allows this origin's scripts, styles and API only (no CDN, no inline script).
/// </summary>
public static class ConsoleFiles
{
    private sealed record File(byte[] Bytes, string ContentType, string ETag);

    private static readonly Dictionary<string, File> Files = Load();

    private const string Policy = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

    public static void MapConsole(this IEndpointRouteBuilder app)
    {
        app.MapGet("/console/{file?}", ServeAsync).ExcludeFromDescription();
    }

    private static async Task ServeAsync(HttpContext h, string? file)
    {
        if (!h.Request.Path.Value!.EndsWith('/') && string.IsNullOrEmpty(file))
        {
            h.Response.Redirect("/console/"); // the page's files are relative to the folder
            return;
        }
        if (!Files.TryGetValue(string.IsNullOrEmpty(file) ? "index.html" : file, out File? f))
        {
            h.Response.StatusCode = 404;
            return;
        }
        IHeaderDictionary headers = h.Response.Headers;
        headers.ContentSecurityPolicy = Policy;
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers.CacheControl = "no-cache";
        headers.ETag = f.ETag;
        if (h.Request.Headers.IfNoneMatch == f.ETag)
        {
            h.Response.StatusCode = 304;
            return;
        }
        h.Response.ContentType = f.ContentType;
        await h.Response.Body.WriteAsync(f.Bytes, h.RequestAborted);
    }

    private static Dictionary<string, File> Load()
    {
        Assembly assembly = typeof(ConsoleFiles).Assembly;
        var files = new Dictionary<string, File>(StringComparer.Ordinal);
        foreach (string name in assembly.GetManifestResourceNames().Where(n => n.StartsWith("console/",
            StringComparison.Ordinal)))
        {
            using Stream stream = assembly.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            byte[] bytes = copy.ToArray();
            string etag = "\"" + Convert.ToHexString(SHA256.HashData(bytes))[..16] + "\"";
            files[name["console/".Length..]] = new File(bytes, ContentType(name), etag);
        }
        return files;
    }

    private static string ContentType(string name) => Path.GetExtension(name) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        _ => "application/octet-stream",
    };
}
