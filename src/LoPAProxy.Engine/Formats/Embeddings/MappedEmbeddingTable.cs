using System.IO.MemoryMappedFiles;
using LoPAProxy.Engine.Formats.Gguf;

namespace LoPAProxy.Engine.Formats.Embeddings;

/// <summary>
/// A table read where its file holds it: the file is memory-mapped and each row is converted from the file's own
/// type when asked for (F32, F16, BF16 widened; Q8_0, Q4_0 dequantised), so the table is never copied into the
/// managed heap — a Llama-2-7B table costs its mapped pages, not 0.5 GB of floats.
/// </summary>
public sealed unsafe class MappedEmbeddingTable : IEmbeddingTable, IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _rows;
    private readonly GgmlType _type;
    private readonly long _rowBytes;
    private readonly string _path;
    private int _disposed;

    private MappedEmbeddingTable(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* rows,
        GgmlType type, long rowBytes, int vocab, int dim)
    {
        _path = path;
        _map = map;
        _view = view;
        _rows = rows;
        _type = type;
        _rowBytes = rowBytes;
        VocabSize = vocab;
        Dim = dim;
    }

    public int VocabSize { get; }
    public int Dim { get; }

    /// <summary>Maps the [<paramref name="vocab"/>, <paramref name="dim"/>] table stored from
    /// <paramref name="offset"/> in <paramref name="path"/> as <paramref name="type"/>.</summary>
    /// <exception cref="TensorFileException">a type that cannot be read by row, or a table past the file's end.
    /// </exception>
    public static MappedEmbeddingTable Open(string path, long offset, GgmlType type, int vocab, int dim)
    {
        if (vocab <= 0 || dim <= 0) throw new TensorFileException(path, $"an embedding table of {vocab} × {dim}");
        if (type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.Q8_0 or GgmlType.Q4_0)
            || GgmlTypes.Block(type) is not { } block || dim % block.Values != 0)
        {
            throw new TensorFileException(path, $"an embedding table of ggml type {type} with rows of {dim} values " +
                "cannot be read row by row (F32, F16, BF16, Q8_0, Q4_0 in whole blocks can)");
        }
        long rowBytes = (long)dim / block.Values * block.Bytes;
        long length = new FileInfo(path).Length;
        if (offset < 0 || offset + vocab * rowBytes > length)
            throw new TensorFileException(path, "the embedding table ends past the end of the file (truncated?)");
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor view = map.CreateViewAccessor(offset, vocab * rowBytes, MemoryMappedFileAccess.Read);
        byte* start = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
        return new MappedEmbeddingTable(path, map, view, start + view.PointerOffset, type, rowBytes, vocab, dim);
    }

    public void Row(int token, Span<float> destination)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)token, (uint)VocabSize, nameof(token));
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var row = new ReadOnlySpan<byte>(_rows + token * _rowBytes, (int)_rowBytes);
        GgmlTypes.Dequantize(_type, row, destination[..Dim], _path, "token embedding");
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
