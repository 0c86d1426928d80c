using System.IO.Hashing;
using System.Text.Json;
using LoPAProxy.Engine.Formats.Embeddings;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.Proxy.Models;

namespace LoPAProxy.Proxy.Tests.Models;

/// <summary>The per-token facts a streamed body sizes itself with are the facts of the row itself.</summary>
public class EmbeddingRowFactsTests
{
    private sealed class CountingTable(float[] values, int vocab, int dim) : IEmbeddingTable
    {
        public int Reads;
        public int VocabSize => vocab;
        public int Dim => dim;

        public void Row(int token, Span<float> destination)
        {
            Interlocked.Increment(ref Reads);
            values.AsSpan(token * dim, dim).CopyTo(destination);
        }
    }

    [Fact]
    public void Crcs_and_json_lengths_match_the_encoded_row_and_are_computed_once_per_token()
    {
        const int Vocab = 50, Dim = 33;
        var random = new Random(4);
        float[] values = Enumerable.Range(0, Vocab * Dim).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
        var table = new CountingTable(values, Vocab, Dim);
        var facts = new EmbeddingRowFacts(table);
        var bytes = new byte[Dim * 2];
        Parallel.For(0, 400, i =>
        {
            int token = i % Vocab;
            float[] row = values.AsSpan(token * Dim, Dim).ToArray();
            var encoded = new byte[Dim * 2];
            FloatConvert.Encode(row, DType.BF16, encoded);
            Assert.Equal(Crc32.HashToUInt32(encoded), facts.Crc(token, DType.BF16));
            Assert.Equal(JsonSerializer.SerializeToUtf8Bytes(row).Length, facts.JsonLength(token));
        });
        int reads = table.Reads;
        Assert.InRange(reads, 2 * Vocab, 2 * 400); // two threads may compute the same token once each
        for (int token = 0; token < Vocab; token++)
        {
            facts.Crc(token, DType.BF16);
            facts.JsonLength(token);
        }
        Assert.Equal(reads, table.Reads);
        FloatConvert.Encode(values.AsSpan(0, Dim), DType.F16, bytes);
        Assert.Equal(Crc32.HashToUInt32(bytes), facts.Crc(0, DType.F16)); // each dtype its own
    }
}
