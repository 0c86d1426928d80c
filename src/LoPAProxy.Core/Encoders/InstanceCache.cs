namespace LoPAProxy.Core.Encoders;

/// <summary>
/// Instance vectors of recent (encoder, text) pairs, least recently used evicted past a memory cap. A repeated
/// instance costs no encoder work and gets the very same x, so its Z is byte-identical — what vLLM's prefix cache
/// keys on. Entries are charged for the vector, the text and bookkeeping.
/// </summary>
public sealed class InstanceCache(long maxBytes)
{
    private const int EntryOverheadBytes = 96;
    private readonly object _gate = new();
    private readonly LinkedList<(string Key, float[] Vector, long Bytes)> _lru = new();
    private readonly Dictionary<string, LinkedListNode<(string Key, float[] Vector, long Bytes)>> _index =
        new(StringComparer.Ordinal);
    private long _bytes, _hits, _misses;

    public (long Hits, long Misses, long Bytes, int Entries) Statistics
    {
        get
        {
            lock (_gate) return (_hits, _misses, _bytes, _index.Count);
        }
    }

    public bool TryGet(string encoder, string text, out float[] vector)
    {
        string key = Key(encoder, text);
        lock (_gate)
        {
            if (_index.TryGetValue(key, out var node))
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                _hits++;
                vector = node.Value.Vector;
                return true;
            }
            _misses++;
        }
        vector = [];
        return false;
    }

    public void Add(string encoder, string text, float[] vector)
    {
        string key = Key(encoder, text);
        long bytes = vector.Length * sizeof(float) + key.Length * sizeof(char) + EntryOverheadBytes;
        if (bytes > maxBytes) return;
        lock (_gate)
        {
            if (_index.ContainsKey(key)) return; // the first vector stays: the same text always gets the same bytes
            _index[key] = _lru.AddFirst((key, vector, bytes));
            _bytes += bytes;
            while (_bytes > maxBytes)
            {
                var last = _lru.Last!.Value;
                _lru.RemoveLast();
                _index.Remove(last.Key);
                _bytes -= last.Bytes;
            }
        }
    }

    private static string Key(string encoder, string text) => encoder + "\u0000" + text;
}
