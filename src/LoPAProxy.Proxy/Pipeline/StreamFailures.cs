using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;

namespace LoPAProxy.Proxy.Pipeline;

/// <summary>
/// When the model server fails in the middle of a streamed (SSE) answer, YARP resets the client connection so a
/// truncated body is not taken for a whole one. An SSE client can be told properly instead: this guard holds back
/// YARP's abort while forwarding, and if the failure came from the backend side of a started event stream it
/// writes one event in OpenAI's streaming error shape — data: {"error": {...}} — and ends the stream cleanly (the
/// official clients raise an APIError on it). Any other abort (a plain JSON body cut short, the client gone) is
/// carried out as YARP asked.
/// </summary>
public sealed class StreamFailureGuard : IHttpRequestLifetimeFeature
{
    private readonly HttpContext _http;
    private readonly IHttpRequestLifetimeFeature _lifetime;
    private readonly IHttpResetFeature? _reset;
    private bool _abortRequested;

    private StreamFailureGuard(HttpContext http, IHttpRequestLifetimeFeature lifetime)
    {
        _http = http;
        _lifetime = lifetime;
        _reset = http.Features.Get<IHttpResetFeature>();
    }

    public CancellationToken RequestAborted
    {
        get => _lifetime.RequestAborted;
        set => _lifetime.RequestAborted = value;
    }

    public void Abort() => _abortRequested = true;

    /// <summary>Installs the guard for the forwarding step.</summary>
    public static StreamFailureGuard Install(HttpContext http)
    {
        var guard = new StreamFailureGuard(http, http.Features.Get<IHttpRequestLifetimeFeature>()!);
        http.Features.Set<IHttpRequestLifetimeFeature>(guard);
        http.Features.Set<IHttpResetFeature>(null); // so YARP falls back to Abort(), which the guard holds
        return guard;
    }

    /// <summary>Puts the features back, then ends the stream with an error event or carries out the abort.</summary>
    public async Task CompleteAsync()
    {
        _http.Features.Set(_lifetime);
        _http.Features.Set(_reset);
        if (!_abortRequested) return;
        ForwarderError? error = _http.Features.Get<IForwarderErrorFeature>()?.Error;
        bool backendSide = error is ForwarderError.ResponseBodyDestination or ForwarderError.ResponseBodyCanceled;
        if (backendSide && IsEventStream(_http.Response) && !_lifetime.RequestAborted.IsCancellationRequested)
        {
            try
            {
                await WriteErrorEventAsync(_http.Response, error!.Value);
                return;
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or InvalidOperationException)
            {
                // The client went away too; fall through to the abort.
            }
        }
        if (_reset is not null) _reset.Reset(8); // INTERNAL_ERROR, as YARP would have
        else _lifetime.Abort();
    }

    private static bool IsEventStream(HttpResponse response) =>
        response.HasStarted && response.ContentType?.StartsWith("text/event-stream",
            StringComparison.OrdinalIgnoreCase) == true;

    private Task WriteErrorEventAsync(HttpResponse response, ForwarderError error) =>
        WriteErrorEventAsync(response, error == ForwarderError.ResponseBodyCanceled
            ? "the model server stopped sending in the middle of the stream (timed out)"
            : "the model server failed in the middle of the stream", _lifetime.RequestAborted);

    /// <summary>One event in OpenAI's streaming error shape; the blank lines first end any event left
    /// half-written.</summary>
    public static async Task WriteErrorEventAsync(HttpResponse response, string message, CancellationToken cancel)
    {
        string json = JsonSerializer.Serialize(new
        {
            error = new
            {
                message = $"{message} (request id {response.HttpContext.TraceIdentifier})",
                type = "server_error", param = (string?)null, code = "backend_stream_error",
            },
        });
        byte[] bytes = Encoding.UTF8.GetBytes($"\n\ndata: {json}\n\n");
        await response.Body.WriteAsync(bytes, cancel);
        await response.Body.FlushAsync(cancel);
    }
}
