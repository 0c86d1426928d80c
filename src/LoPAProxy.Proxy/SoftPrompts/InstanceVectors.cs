using System.Collections.Concurrent;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Proxy.Configuration;
using Microsoft.Extensions.Options;

namespace LoPAProxy.Proxy.SoftPrompts;

/// <summary>
/// Instance texts → instance vectors x for the proxy: repeated (encoder, text) pairs come from the instance cache
/// (Encoding:CacheMiB), the rest go through the encoder's micro-batcher (Encoding:MaxBatch, MaxWaitMs), so the
/// instances of concurrent requests are encoded together. MaxBatch 1 encodes on the request's own thread.
/// </summary>
public sealed class InstanceVectors(IOptions<LoPAOptions> options) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<MicroBatcher>> _batchers = new(StringComparer.Ordinal);
    private readonly InstanceCache? _cache = options.Value.Encoding.CacheMiB > 0
        ? new InstanceCache((long)options.Value.Encoding.CacheMiB << 20)
        : null;

    public InstanceCache? Cache => _cache;

    /// <summary>Mean batch size so far, per encoder (for readiness output and benchmarks).</summary>
    public IReadOnlyDictionary<string, (long Batches, long Instances)> BatchStatistics =>
        _batchers.Where(b => b.Value.IsValueCreated).ToDictionary(b => b.Key, b => b.Value.Value.Statistics);

    /// <summary>x for each text, [texts, encoder.Dim] row-major.</summary>
    public async Task<float[]> EncodeAsync(IInstanceEncoder encoder, IReadOnlyList<string> texts,
        CancellationToken cancel)
    {
        int dim = encoder.Dim;
        var x = new float[texts.Count * dim];
        var misses = new List<(int Index, string Text)>();
        for (int i = 0; i < texts.Count; i++)
        {
            if (_cache is not null && _cache.TryGet(encoder.Name, texts[i], out float[] cached))
            {
                cached.CopyTo(x, i * dim);
                Core.Telemetry.CoreTelemetry.InstanceCacheHits.Add(1);
                continue;
            }
            misses.Add((i, texts[i]));
            Core.Telemetry.CoreTelemetry.InstanceCacheMisses.Add(1);
        }
        if (misses.Count == 0) return x;
        float[][] vectors = await EncodeMissesAsync(encoder, misses.Select(m => m.Text).ToArray(), cancel);
        for (int j = 0; j < misses.Count; j++)
        {
            vectors[j].CopyTo(x, misses[j].Index * dim);
            _cache?.Add(encoder.Name, misses[j].Text, vectors[j]);
        }
        return x;
    }

    private async Task<float[][]> EncodeMissesAsync(IInstanceEncoder encoder, string[] texts, CancellationToken cancel)
    {
        EncodingOptions o = options.Value.Encoding;
        if (o.MaxBatch <= 1)
        {
            var flat = new float[texts.Length * encoder.Dim];
            encoder.Encode(texts, flat, cancel);
            return Enumerable.Range(0, texts.Length).Select(i => flat.AsSpan(i * encoder.Dim,
                encoder.Dim).ToArray()).ToArray();
        }
        MicroBatcher batcher = _batchers.GetOrAdd(encoder.Name, _ => new Lazy<MicroBatcher>(() =>
            new MicroBatcher(encoder, o.MaxBatch, TimeSpan.FromMilliseconds(o.MaxWaitMs)))).Value;
        return await Task.WhenAll(texts.Select(t => batcher.EncodeAsync(t, cancel)));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var batcher in _batchers.Values.Where(b => b.IsValueCreated)) await batcher.Value.DisposeAsync();
    }
}
