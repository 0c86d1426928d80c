using System.Collections.Concurrent;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Proxy.Configuration;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.SoftPrompts;

/// <summary>Encoders by name, loaded once (the configured ones at start-up, others on first use); their native
/// sessions are released with the pool (the container disposes it at shutdown).</summary>
public sealed class EncoderPool(IOptions<LoPAOptions> options,
    Microsoft.Extensions.Logging.ILogger<EncoderPool>? log = null) : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<IInstanceEncoder>> _encoders = new(StringComparer.Ordinal);

    public IInstanceEncoder Get(string name) =>
        _encoders.GetOrAdd(name, n => new Lazy<IInstanceEncoder>(() => EncoderFactory.Create(n,
            options.Value.ToEncoderOptions(Warn)))).Value;

    /// <summary>Loads the configured encoders; true when all loaded.</summary>
    public bool Preload(Action<string, Exception> onError)
    {
        bool ok = true;
        foreach (string name in options.Value.Encoders)
        {
            try { Get(name); }
            catch (Exception e) { _encoders.TryRemove(name, out _); onError(name, e); ok = false; }
        }
        return ok;
    }

    private void Warn(string message) => Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(
        log ?? Microsoft.Extensions.Logging.Abstractions.NullLogger<EncoderPool>.Instance, "{Message}", message);

    /// <summary>Where each loaded encoder runs ("cpu", "cuda:0"; "managed" for the project's own).</summary>
    public IReadOnlyDictionary<string, string> Devices => _encoders
        .Where(e => e.Value.IsValueCreated)
        .ToDictionary(e => e.Key, e => e.Value.Value is Core.Encoders.Onnx.OnnxSentenceEncoder onnx
            ? onnx.Device : "managed");

    public bool AllLoaded => options.Value.Encoders.All(n => _encoders.TryGetValue(n, out var l) && l.IsValueCreated);

    public void Dispose()
    {
        foreach (Lazy<IInstanceEncoder> encoder in _encoders.Values)
        {
            if (encoder.IsValueCreated && encoder.Value is IDisposable disposable) disposable.Dispose();
        }
        _encoders.Clear();
    }
}
