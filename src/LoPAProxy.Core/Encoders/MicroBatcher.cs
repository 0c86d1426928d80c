using System.Threading.Channels;

namespace LoPAProxy.Core.Encoders;

/// <summary>
/// Encodes the instances of concurrent requests together. Each request hands in its text and awaits its vector; a
/// single loop takes whatever is queued when the encoder becomes free, at most <c>maxBatch</c> instances, orders
/// them by length and runs groups whose lengths are close (padding stays small). It waits up to <c>maxWait</c> for
/// company only under load — when the previous run carried more than one instance or others queued while it ran —
/// so a lone request is never held back, while concurrent ones gather into real batches. A request cancelled while
/// it waits leaves its batch. An instance's vector does not
/// depend on its batch-mates beyond float rounding (≤ 1e-6, measured and tested for the ONNX encoders).
/// </summary>
public sealed class MicroBatcher : IAsyncDisposable
{
    private sealed record Pending(string Text, TaskCompletionSource<float[]> Result, long Enqueued);

    private readonly IInstanceEncoder _encoder;
    private readonly int _maxBatch;
    private readonly TimeSpan _maxWait;
    private readonly Channel<Pending> _queue =
        Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _batches, _instances, _queued;
    private bool _underLoad;

    public MicroBatcher(IInstanceEncoder encoder, int maxBatch, TimeSpan maxWait)
    {
        _encoder = encoder;
        _maxBatch = Math.Max(1, maxBatch);
        _maxWait = maxWait;
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>Encoder runs so far and the instances they carried (mean batch size = instances / batches).</summary>
    public (long Batches, long Instances) Statistics => (Interlocked.Read(ref _batches),
        Interlocked.Read(ref _instances));

    public Task<float[]> EncodeAsync(string text, CancellationToken cancel)
    {
        var result = new TaskCompletionSource<float[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        var pending = new Pending(text, result, System.Diagnostics.Stopwatch.GetTimestamp());
        if (cancel.CanBeCanceled) cancel.Register(() => pending.Result.TrySetCanceled(cancel));
        Interlocked.Increment(ref _queued);
        if (!_queue.Writer.TryWrite(pending))
        {
            Interlocked.Decrement(ref _queued);
            pending.Result.TrySetException(new ObjectDisposedException(nameof(MicroBatcher)));
        }
        return pending.Result.Task;
    }

    private async Task LoopAsync()
    {
        ChannelReader<Pending> reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(_stop.Token))
            {
                List<Pending> batch = await CollectAsync(reader);
                foreach (List<Pending> group in GroupByLength(batch)) Run(group);
                _underLoad = batch.Count > 1 || Interlocked.Read(ref _queued) > 0;
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        while (reader.TryRead(out Pending? left)) left.Result.TrySetCanceled();
    }

    /// <summary>What is queued now; under load, more until the batch is full or the first has waited
    /// <c>maxWait</c>.</summary>
    private async Task<List<Pending>> CollectAsync(ChannelReader<Pending> reader)
    {
        var batch = new List<Pending>(_maxBatch);
        DateTime deadline = DateTime.UtcNow + (_underLoad ? _maxWait : TimeSpan.Zero);
        while (batch.Count < _maxBatch)
        {
            if (reader.TryRead(out Pending? next))
            {
                Interlocked.Decrement(ref _queued);
                if (!next.Result.Task.IsCompleted) batch.Add(next);
                continue;
            }
            TimeSpan remaining = deadline - DateTime.UtcNow;
            if (batch.Count > 0 && remaining <= TimeSpan.Zero) break;
            if (batch.Count == 0) remaining = Timeout.InfiniteTimeSpan;
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            if (remaining != Timeout.InfiniteTimeSpan) wait.CancelAfter(remaining);
            try
            {
                if (!await reader.WaitToReadAsync(wait.Token)) break;
            }
            catch (OperationCanceledException) when (!_stop.IsCancellationRequested)
            {
                break;
            }
        }
        return batch;
    }

    /// <summary>Sorted by length, split where a text is over twice the group's shortest (plus 16 characters).</summary>
    private static IEnumerable<List<Pending>> GroupByLength(List<Pending> batch)
    {
        var group = new List<Pending>();
        foreach (Pending p in batch.OrderBy(p => p.Text.Length))
        {
            if (group.Count > 0 && p.Text.Length > 2 * group[0].Text.Length + 16)
            {
                yield return group;
                group = new List<Pending>();
            }
            group.Add(p);
        }
        if (group.Count > 0) yield return group;
    }

    private void Run(List<Pending> group)
    {
        group.RemoveAll(p => p.Result.Task.IsCompleted); // cancelled while waiting: they leave the batch
        if (group.Count == 0) return;
        int dim = _encoder.Dim;
        var output = new float[group.Count * dim];
        Telemetry.CoreTelemetry.BatchSize.Record(group.Count);
        foreach (Pending p in group)
            Telemetry.CoreTelemetry.QueueWait.Record(System.Diagnostics.Stopwatch.GetElapsedTime(p.Enqueued).TotalSeconds);
        try
        {
            _encoder.Encode(group.Select(p => p.Text).ToArray(), output);
        }
        catch (Exception e)
        {
            foreach (Pending p in group) p.Result.TrySetException(e);
            return;
        }
        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _instances, group.Count);
        for (int i = 0; i < group.Count; i++) group[i].Result.TrySetResult(output.AsSpan(i * dim, dim).ToArray());
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}
