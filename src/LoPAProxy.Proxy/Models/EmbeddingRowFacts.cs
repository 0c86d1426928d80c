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
        KnownValues known = _crcs.GetOrAdd(dtype, _ => new KnownValues(table.VocabSize));
        if (known.TryGet(token, out uint crc)) return crc;
        float[] row = ArrayPool<float>.Shared.Rent(table.Dim);
        byte[] bytes = ArrayPool<byte>.Shared.Rent(table.Dim * dtype.Size());
        try
        {
            Span<float> values = row.AsSpan(0, table.Dim);
            table.Row(token, values);
            Span<byte> encoded = bytes.AsSpan(0, table.Dim * dtype.Size());
            FloatConvert.Encode(values, dtype, encoded);
            crc = Crc32.HashToUInt32(encoded);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(row);
            ArrayPool<byte>.Shared.Return(bytes);
        }
        known.Set(token, crc);
        return crc;
    }

    /// <summary>The length of row <paramref name="token"/>'s JSON text as <see cref="JsonRowsStream"/> writes it.
    /// </summary>
    public int JsonLength(int token)
    {
        if (_jsonLengths.TryGet(token, out uint length)) return (int)length;
        float[] row = ArrayPool<float>.Shared.Rent(table.Dim);
        try
        {
            Span<float> values = row.AsSpan(0, table.Dim);
            table.Row(token, values);
            length = (uint)JsonRowsStream.TextLength(values);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(row);
        }
        _jsonLengths.Set(token, length);
        return (int)length;
    }

    /// <summary>A value per token and whether it is known yet. Two threads may compute the same value; both
    /// write the same, and the flag is published after the value.</summary>
    private sealed class KnownValues(int count)
    {
        private readonly uint[] _values = new uint[count];
        private readonly byte[] _known = new byte[count];

        public bool TryGet(int token, out uint value)
        {
            bool known = Volatile.Read(ref _known[token]) != 0;
            value = known ? _values[token] : 0;
            return known;
        }

        public void Set(int token, uint value)
        {
            _values[token] = value;
            Volatile.Write(ref _known[token], 1);
        }
    }
}
