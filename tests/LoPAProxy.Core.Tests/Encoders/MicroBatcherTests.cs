using LoPAProxy.Core.Encoders;

namespace LoPAProxy.Core.Tests.Encoders;

public class MicroBatcherTests
{
    /// <summary>
    /// An encoder whose runs can be held open: it records each run's texts and, while <see cref="Hold"/> is set,
    /// waits inside the run — so the test decides what is queued while the encoder is busy. Its vectors are
    /// deterministic functions of the text (the batcher, not an encoder, is under test here).
    /// </summary>
    private sealed class GatedEncoder : IInstanceEncoder
    {
        public readonly List<string[]> Runs = new();
        public readonly TaskCompletionSource Started = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public ManualResetEventSlim Hold { get; } = new(false);

        public string Name => "gated";
        public int Dim => 4;
        public int MaxTokens => 16;
        public int CountTokens(string text) => Math.Min(MaxTokens, text.Length);

        public void Encode(IReadOnlyList<string> texts, Span<float> output, CancellationToken cancel = default)
        {
            lock (Runs) Runs.Add(texts.ToArray());
            Started.TrySetResult();
            Hold.Wait(TimeSpan.FromSeconds(10), CancellationToken.None);
            for (int i = 0; i < texts.Count; i++)
                for (int k = 0; k < Dim; k++) output[i * Dim + k] = texts[i].Length * (k + 1);
        }
    }

    [Fact]
    public async Task A_request_cancelled_while_waiting_leaves_its_batch()
    {
        var encoder = new GatedEncoder();
        await using var batcher = new MicroBatcher(encoder, maxBatch: 8, maxWait: TimeSpan.FromMilliseconds(50));
        Task<float[]> busy = batcher.EncodeAsync("keeps the encoder busy", CancellationToken.None);
        await encoder.Started.Task;
        using var leaving = new CancellationTokenSource();
        Task<float[]> first = batcher.EncodeAsync("I will not wait.", leaving.Token);
        Task<float[]> second = batcher.EncodeAsync("I will.", CancellationToken.None);
        leaving.Cancel();
        encoder.Hold.Set();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first);
        Assert.Equal(new float[] { 7, 14, 21, 28 }, await second);
        await busy;
        Assert.Equal(2, encoder.Runs.Count);
        Assert.Equal(new[] { "I will." }, encoder.Runs[1]); // the cancelled request never reached the encoder
    }

    [Fact]
    public async Task Requests_queued_while_the_encoder_runs_share_the_next_run_and_a_lone_one_does_not_wait()
    {
        var encoder = new GatedEncoder();
        await using var batcher = new MicroBatcher(encoder, maxBatch: 32, maxWait: TimeSpan.FromSeconds(2));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Task<float[]> alone = batcher.EncodeAsync("alone", CancellationToken.None);
        await encoder.Started.Task;
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1),
            $"a lone request waited {sw.Elapsed.TotalSeconds:F1} s for company");
        Task<float[]>[] queued = Enumerable.Range(0, 20).Select(i => batcher.EncodeAsync($"text {i}",
            CancellationToken.None)).ToArray();
        encoder.Hold.Set();
        await alone;
        float[][] vectors = await Task.WhenAll(queued);
        Assert.Equal(new[] { "alone" }, encoder.Runs[0]);
        Assert.Equal(20, encoder.Runs.Skip(1).Sum(r => r.Length));
        Assert.True(encoder.Runs.Count <= 3,
            $"{encoder.Runs.Count} runs"); // queued together: one run (or a length split)
        for (int i = 0; i < 20; i++) Assert.Equal($"text {i}".Length, vectors[i][0]);
    }

    [Fact]
    public async Task Real_encoder_batches_equal_its_runs_alone()
    {
        await using var batcher = new MicroBatcher(OnnxEncoderTests.MiniLm.Value, maxBatch: 32,
            maxWait: TimeSpan.FromMilliseconds(20));
        string[] texts = Enumerable.Range(0, 40).Select(i => $"Sentence number {i} about a film.").ToArray();
        float[][] vectors = await Task.WhenAll(texts.Select(t => batcher.EncodeAsync(t, CancellationToken.None)));
        float[] alone = OnnxEncoderTests.EncodeOneByOne(OnnxEncoderTests.MiniLm.Value, texts.ToList());
        for (int i = 0; i < texts.Length; i++)
            for (int k = 0; k < 384; k++) Assert.True(Math.Abs(vectors[i][k] - alone[i * 384 + k]) <= 1e-6);
        Assert.Equal(40, batcher.Statistics.Instances);
    }
}
