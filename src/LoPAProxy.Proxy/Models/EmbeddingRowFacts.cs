using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Hashing;
using LoPAProxy.Engine.Formats.Embeddings;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.Proxy.Requests;

namespace LoPAProxy.Proxy.Models;

/// <summary>
/// What a streamed full-sequence body must know of each vocabulary row before it sends the first byte — the CRC-32
/// of the row in a wire dtype (torch.save's zip carries the data's CRC ahead of it) and the length of the row's JSON
/// text (SGLang's Content-Length) — computed the first time a token is asked for and kept: the table is read-only,
/// so the facts never change. The sizing pass over a prompt then costs a lookup per vocabulary row instead of
/// converting or formatting it (measured at d = 4,096 in docs/proxy.md). 5 bytes per token per fact: 0.6 MiB for a
/// 128k vocabulary.
/// </summary>
public sealed class EmbeddingRowFacts(IEmbeddingTable table)
{
    private readonly ConcurrentDictionary<DType, KnownValues> _crcs = new();
    private readonly KnownValues _jsonLengths = new(table.VocabSize);

    /// <summary>The CRC-32 of row <paramref name="token"/> encoded as <paramref name="dtype"/>.</summary>
    public uint Crc(int token, DType dtype)
    {
        // No closures: this runs for every vocabulary row of every full-sequence request.
        KnownValues known = _crcs.TryGetValue(dtype, out KnownValues? k) ? k
            : _crcs.GetOrAdd(dtype, new KnownValues(table.VocabSize));
        return known.Get(table, token, dtype, static (row, wire) => Crc(row, wire));
    }

    /// <summary>The length of row <paramref name="token"/>'s JSON text as <see cref="JsonRowsStream"/> writes it.
    /// </summary>
    public int JsonLength(int token) =>
        (int)_jsonLengths.Get(table, token, DType.F32, static (row, _) => (uint)JsonRowsStream.TextLength(row));

    private static uint Crc(ReadOnlySpan<float> row, DType dtype)
    {
        byte[] bytes = ArrayPool<byte>.Shared.Rent(row.Length * dtype.Size());
        try
        {
            Span<byte> encoded = bytes.AsSpan(0, row.Length * dtype.Size());
            FloatConvert.Encode(row, dtype, encoded);
            return Crc32.HashToUInt32(encoded);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    private delegate uint RowFact(ReadOnlySpan<float> row, DType dtype);

    /// <summary>A value per token and whether it is known yet. Two threads may compute the same value; both
    /// write the same, and the flag is published after the value.</summary>
    private sealed class KnownValues(int count)
    {
        private readonly uint[] _values = new uint[count];
        private readonly byte[] _known = new byte[count];

        /// <summary>The token's value, computed from its row by <paramref name="fact"/> the first time.</summary>
        public uint Get(IEmbeddingTable table, int token, DType dtype, RowFact fact)
        {
            if (Volatile.Read(ref _known[token]) != 0) return _values[token];
            float[] row = ArrayPool<float>.Shared.Rent(table.Dim);
            try
            {
                Span<float> values = row.AsSpan(0, table.Dim);
                table.Row(token, values);
                _values[token] = fact(values, dtype);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(row);
            }
            Volatile.Write(ref _known[token], 1);
            return _values[token];
        }
    }
}
