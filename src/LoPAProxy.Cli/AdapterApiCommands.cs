using System.CommandLine;
using System.Net.Http.Headers;
using System.Net.Http.Json;
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

    public static IEnumerable<Command> Create()
    {
        var url = Url(); var key = Key(); var json = ApiOutput.JsonOption();
        var path = new Argument<string>("adapter") { Description = "adapter directory or single .safetensors file" };
        var name = new Option<string>("--name") { Description = "adapter name", Required = true };
        var version = new Option<string>("--version") { Description = "version (immutable)", Required = true };
        var noActivate = new Option<bool>("--no-activate")
        {
            Description = "upload without making it the active version",
        };
        var upload = new Command("upload", "Upload an adapter version to the proxy") { path, name, version, noActivate,
            url, key, json };
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
            else
            {
                form.Add(new ByteArrayContent(await File.ReadAllBytesAsync(source, cancel)), "file",
                Path.GetFileName(source));
            }

            using var c = Client(p, url, key);
            return await ApiOutput.PrintAsync(await c.PostAsync("v1/adapters", form, cancel), p.GetValue(json));
        });

        var url2 = Url(); var key2 = Key(); var json2 = ApiOutput.JsonOption();
        var list = new Command("list", "List this tenant's adapters") { url2, key2, json2 };
        list.SetAction(async (p, cancel) =>
        {
            using var c = Client(p, url2, key2);
            return await ApiOutput.PrintAsync(await c.GetAsync("v1/adapters", cancel), p.GetValue(json2));
        });

        var url3 = Url(); var key3 = Key(); var json3 = ApiOutput.JsonOption();
        var reference = new Argument<string>("adapter") { Description = "name (every version) or name@version" };
        var delete = new Command("delete", "Delete an adapter version, or every version of a name") { reference, url3,
            key3, json3 };
        delete.SetAction(async (p, cancel) =>
        {
            using var c = Client(p, url3, key3);
            string target = $"v1/adapters/{Uri.EscapeDataString(p.GetValue(reference)!)}";
            return await ApiOutput.PrintAsync(await c.DeleteAsync(target, cancel), p.GetValue(json3));
        });

        var url4 = Url(); var key4 = Key(); var json4 = ApiOutput.JsonOption();
        var activateName = new Argument<string>("name") { Description = "adapter name" };
        var activateVersion = new Argument<string>("version") { Description = "the version to make active" };
        var activate = new Command("activate",
            "Make a version the one the name resolves to (roll forward or back)")
        {
            activateName, activateVersion, url4, key4, json4,
        };
        activate.SetAction(async (p, cancel) =>
        {
            using var c = Client(p, url4, key4);
            string target = $"v1/adapters/{Uri.EscapeDataString(p.GetValue(activateName)!)}/activate";
            var body = new { version = p.GetValue(activateVersion) };
            return await ApiOutput.PrintAsync(await c.PostAsJsonAsync(target, body, cancel), p.GetValue(json4));
        });
        return new[] { upload, list, delete, activate };
    }
}
