using System.CommandLine;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using LoPAProxy.Core.Adapters;

namespace LoPAProxy.Cli;

/// <summary>`lopa adapter upload | list | delete | activate`: the tenant adapter API, with the tenant's key.</summary>
internal static class AdapterApiCommands
{
    private static Option<string> Url() => new("--url")
    {
        Description = "proxy base URL (or LOPA_URL)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("LOPA_URL") ?? "http://127.0.0.1:8080",
    };
    private static Option<string?> Key() => new("--key") { Description = "tenant API key (or OPENAI_API_KEY)" };

    private static HttpClient Client(ParseResult p, Option<string> url, Option<string?> key)
    {
        string k = p.GetValue(key) ?? Environment.GetEnvironmentVariable("OPENAI_API_KEY")
            ?? throw new ArgumentException("pass --key or set OPENAI_API_KEY");
        var c = new HttpClient { BaseAddress = new Uri(p.GetValue(url)!.TrimEnd('/') + "/") };
        c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", k);
        return c;
    }

    /// <summary>Prints the body; a non-2xx answer prints the API's error message and returns 1.</summary>
    internal static async Task<int> Report(HttpResponseMessage r)
    {
        string body = await r.Content.ReadAsStringAsync();
        if (r.IsSuccessStatusCode) { Console.WriteLine(body.Length == 0
            ? $"{(int)r.StatusCode} {r.ReasonPhrase}" : body); return 0; }
        string message = body;
        try { message = JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("message").GetString()
            ?? body; } catch (JsonException) { }
        Console.Error.WriteLine($"lopa: {(int)r.StatusCode}: {message}");
        return 1;
    }

    public static IEnumerable<Command> Create()
    {
        var url = Url(); var key = Key();
        var path = new Argument<string>("adapter") { Description = "adapter directory or single .safetensors file" };
        var name = new Option<string>("--name") { Description = "adapter name", Required = true };
        var version = new Option<string>("--version") { Description = "version (immutable)", Required = true };
        var noActivate = new Option<bool>("--no-activate")
        {
            Description = "upload without making it the active version",
        };
        var upload = new Command("upload", "Upload an adapter version to the proxy") { path, name, version, noActivate,
            url, key };
        upload.SetAction(async (p, cancel) =>
        {
            string source = p.GetValue(path)!;
            var form = new MultipartFormDataContent { { new StringContent(p.GetValue(name)!), "name" },
                { new StringContent(p.GetValue(version)!), "version" },
                { new StringContent(p.GetValue(noActivate) ? "false" : "true"), "activate" } };
            if (Directory.Exists(source))
            {
                form.Add(new ByteArrayContent(await File.ReadAllBytesAsync(Path.Combine(source,
                    LopaAdapter.ConfigFile), cancel)), "config", LopaAdapter.ConfigFile);
                form.Add(new ByteArrayContent(await File.ReadAllBytesAsync(Path.Combine(source,
                    LopaAdapter.WeightsFile), cancel)), "weights", LopaAdapter.WeightsFile);
            }
            else form.Add(new ByteArrayContent(await File.ReadAllBytesAsync(source, cancel)), "file",
                Path.GetFileName(source));
            using var c = Client(p, url, key);
            return await Report(await c.PostAsync("v1/adapters", form, cancel));
        });

        var url2 = Url(); var key2 = Key();
        var list = new Command("list", "List this tenant's adapters") { url2, key2 };
        list.SetAction(async (p, cancel) => { using var c = Client(p, url2,
            key2); return await Report(await c.GetAsync("v1/adapters", cancel)); });

        var url3 = Url(); var key3 = Key();
        var reference = new Argument<string>("adapter") { Description = "name (every version) or name@version" };
        var delete = new Command("delete", "Delete an adapter version, or every version of a name") { reference, url3,
            key3 };
        delete.SetAction(async (p, cancel) => { using var c = Client(p, url3,
            key3); return await Report(await c.DeleteAsync($"v1/adapters/{Uri.EscapeDataString(p.GetValue(reference)!)}", cancel)); });

        var url4 = Url(); var key4 = Key();
        var activateName = new Argument<string>("name") { Description = "adapter name" };
        var activateVersion = new Argument<string>("version") { Description = "the version to make active" };
        var activate = new Command("activate",
            "Make a version the one the name resolves to (roll forward or back)") { activateName, activateVersion, url4, key4 };
        activate.SetAction(async (p, cancel) =>
        {
            using var c = Client(p, url4, key4);
            return await Report(await c.PostAsJsonAsync($"v1/adapters/{Uri.EscapeDataString(p.GetValue(activateName)!)}/activate", new { version = p.GetValue(activateVersion) }, cancel));
        });
        return new[] { upload, list, delete, activate };
    }
}
