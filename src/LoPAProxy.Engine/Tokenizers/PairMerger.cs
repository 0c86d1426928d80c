namespace LoPAProxy.Engine.Tokenizers;

/// <summary>
/// The BPE merge loop both tokenizer flavours share: repeatedly merge the adjacent pair with the lowest
/// priority (SentencePiece: −score; Hugging Face: merge rank), the leftmost on ties, until no pair merges.
/// A heap over a linked list makes it O(n log n) where the textbook rescan is O(n²).
/// </summary>
internal static class PairMerger
{
    /// <param name="lookup">(left id, right id) → (merged id, priority), or null when the pair does not merge.</param>
    public static void Merge(List<int> tokens, Func<int, int, (int Merged, float Priority)?> lookup)
    {
        int n = tokens.Count;
        if (n < 2) return;
        var id = tokens.ToArray();
        var next = new int[n];
        var prev = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; alive[i] = true; }
        var heap = new PriorityQueue<(int Left, int Right, int LeftId, int RightId, int Merged), (float, int)>();
        void Consider(int left)
        {
            int right = left < 0 ? -1 : next[left];
            if (left < 0 || right < 0) return;
            if (lookup(id[left], id[right]) is { } m) heap.Enqueue((left, right, id[left], id[right], m.Merged), (m.Priority, left));
        }
        for (int i = 0; i < n - 1; i++) Consider(i);
        while (heap.TryDequeue(out var c, out _))
        {
            // Stale entries (a side already merged into something else) are skipped.
            if (!alive[c.Left] || !alive[c.Right] || next[c.Left] != c.Right || id[c.Left] != c.LeftId || id[c.Right] != c.RightId) continue;
            id[c.Left] = c.Merged;
            alive[c.Right] = false;
            next[c.Left] = next[c.Right];
            if (next[c.Right] >= 0) prev[next[c.Right]] = c.Left;
            Consider(prev[c.Left]);
            Consider(c.Left);
        }
        tokens.Clear();
        for (int i = 0; i >= 0; i = next[i]) tokens.Add(id[i]);
    }
}
