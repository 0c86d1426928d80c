using LoPAProxy.Core.Encoders;

namespace LoPAProxy.Core.Tests.Encoders;

public class MicroBatcherTests
{
    [Fact]
    public async Task A_request_cancelled_while_waiting_leaves_its_batch()
    {
        await using var batcher = new MicroBatcher(OnnxEncoderTests.MiniLm.Value, maxBatch: 8, maxWait: TimeSpan.FromMilliseconds(300));
        using var leaving = new CancellationTokenSource();
        Task<float[]> first = batcher.EncodeAsync("I will not wait.", leaving.Token);
        Task<float[]> second = batcher.EncodeAsync("I will.", CancellationToken.None);
        leaving.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first);
        float[] x = await second;
        Assert.Equal(384, x.Length);
        Assert.Equal((1L, 1L), batcher.Statistics); // one run, carrying only the request that stayed
    }

    [Fact]
    public async Task Concurrent_instances_share_runs_and_get_their_own_vectors()
    {
        await using var batcher = new MicroBatcher(OnnxEncoderTests.MiniLm.Value, maxBatch: 32, maxWait: TimeSpan.FromMilliseconds(20));
        string[] texts = Enumerable.Range(0, 40).Select(i => $"Sentence number {i} about a film.").ToArray();
        float[][] vectors = await Task.WhenAll(texts.Select(t => batcher.EncodeAsync(t, CancellationToken.None)));
        float[] alone = OnnxEncoderTests.EncodeOneByOne(OnnxEncoderTests.MiniLm.Value, texts.ToList());
        for (int i = 0; i < texts.Length; i++)
            for (int k = 0; k < 384; k++) Assert.True(Math.Abs(vectors[i][k] - alone[i * 384 + k]) <= 1e-6);
        var (batches, instances) = batcher.Statistics;
        Assert.Equal(40, instances);
        Assert.True(batches < 40, $"{batches} runs for 40 instances");
    }
}
