namespace LoPAProxy.Engine.Kernels;

/// <summary>Embedding gather: out[i] = table[ids[i]] for table [vocab, dim], ids checked. A row copy: the proxy's
/// full-sequence dialects and the trainer's data path need it without loading a runtime.</summary>
public static class Embedding
{
    public static void Gather(ReadOnlySpan<float> table, int vocab, int dim, ReadOnlySpan<int> ids, Span<float> dst)
    {
        if (table.Length < vocab * dim || dst.Length < ids.Length * dim) throw new ArgumentException("embedding: buffers too small");
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if ((uint)id >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} outside vocabulary of {vocab}");
            table.Slice(id * dim, dim).CopyTo(dst.Slice(i * dim, dim));
        }
    }
}
