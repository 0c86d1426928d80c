using System.CommandLine;

namespace LoPAProxy.Cli;

/// <summary>
/// `lopa probe URL`: exit 0 when a GET of URL answers 2xx within the timeout, else 1 with the reason on stderr. The
/// images' HEALTHCHECK, so that they need no curl.
/// </summary>
internal static class ProbeCommand
{
    private static readonly Argument<string> Url = new("url")
    {
        Description = "an http URL, e.g. http://127.0.0.1:8080/healthz",
    };

    private static readonly Option<int> TimeoutSeconds = new("--timeout")
    {
        Description = "seconds to wait for the answer", DefaultValueFactory = _ => 3,
    };

    public static Command Create()
    {
        var command = new Command("probe", "Exit 0 if a GET of the URL answers 2xx (container health checks)")
        {
            Url, TimeoutSeconds,
        };
        command.SetAction((parse, cancel) => ProbeAsync(parse.GetValue(Url)!, parse.GetValue(TimeoutSeconds), cancel));
        return command;
    }

    private static async Task<int> ProbeAsync(string text, int timeoutSeconds, CancellationToken cancel)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out Uri? url) || url.Scheme is not ("http" or "https"))
        {
            await Console.Error.WriteLineAsync($"lopa probe: '{text}' is not an http(s) URL");
            return 1;
        }
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(Math.Max(1, timeoutSeconds)) };
        try
        {
            using HttpResponseMessage response = await client.GetAsync(url, cancel);
            if (response.IsSuccessStatusCode) return 0;
            await Console.Error.WriteLineAsync($"lopa probe: {url} answered {(int)response.StatusCode}");
            return 1;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            await Console.Error.WriteLineAsync($"lopa probe: {url}: {e.Message}");
            return 1;
        }
    }
}
