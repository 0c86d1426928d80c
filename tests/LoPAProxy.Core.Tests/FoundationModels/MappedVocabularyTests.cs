using LoPAProxy.Core.FoundationModels;
using LoPAProxy.Engine.Formats;
using LoPAProxy.Engine.Formats.Embeddings;
using LoPAProxy.Engine.Formats.Gguf;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Core.Tests.FoundationModels;

/// <summary>A model's embedding table stays in its file: mapped, a row converted when asked for.</summary>
public class MappedVocabularyTests
{
    /// <summary>A GGUF with a Llama-2-sized vocabulary (32,000 pieces) and a 32,000 × 512 float32 table (62.5 MiB).
    /// </summary>
    private static string BigGguf(out float[] table)
    {
        const int Vocab = 32_000, Dim = 512;
        table = new float[Vocab * Dim];
        var random = new Random(7);
        for (int i = 0; i < table.Length; i++) table[i] = (float)(random.NextDouble() - 0.5);
        string[] pieces = Enumerable.Range(0, Vocab).Select(i => i < 3 ? $"<{i}>" : $"p{i}").ToArray();
        int[] types = Enumerable.Range(0, Vocab).Select(i => i < 3 ? 3 : 1).ToArray();
        string path = Path.Combine(TempDir.Create(), "big.gguf");
        new GgufWriter()
            .Add("general.architecture", "llama")
            .Add("llama.context_length", 4096u)
            .Add("tokenizer.ggml.model", "llama")
            .Add("tokenizer.ggml.tokens", pieces)
            .Add("tokenizer.ggml.scores", new float[Vocab])
            .Add("tokenizer.ggml.token_type", types)
            .AddTensor("token_embd.weight", table, Dim, Vocab)
            .Write(path);
        return path;
    }

    [Fact]
    public void Loading_a_large_table_does_not_copy_it_into_the_heap_and_rows_read_back_exact()
    {
        string path = BigGguf(out float[] table);
        long before = GC.GetAllocatedBytesForCurrentThread();
        FoundationModelVocabulary fm = FoundationModelVocabulary.Load(path);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        // The old loader allocated the whole table as floats (65.5 MB here); the vocabulary itself costs a few MB.
        Assert.True(allocated < table.Length * sizeof(float) / 4, $"{allocated} bytes allocated while loading");
        Assert.IsType<MappedEmbeddingTable>(fm.Table);
        Assert.Equal((32_000, 512, 4096), (fm.VocabSize, fm.Dim, fm.ContextLength));
        var row = new float[512];
        foreach (int token in new[] { 0, 1, 12_345, 31_999 })
        {
            fm.Table.Row(token, row);
            Assert.Equal(table.AsSpan(token * 512, 512).ToArray(), row);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => fm.Table.Row(32_000, row));
    }

    [Fact]
    public void A_table_written_a_row_at_a_time_as_F16_reads_back_as_the_rounded_halves()
    {
        const int Vocab = 300, Dim = 96;
        string path = Path.Combine(TempDir.Create(), "f16.gguf");
        static float Value(int token, int column) => MathF.Sin(token * 0.37f + column) * (1 + token % 7);
        new GgufWriter()
            .Add("general.architecture", "llama")
            .Add("tokenizer.ggml.model", "llama")
            .Add("tokenizer.ggml.tokens", Enumerable.Range(0, Vocab).Select(i => $"p{i}").ToArray())
            .AddMatrix("token_embd.weight", GgmlType.F16, Vocab, Dim, (token, row) =>
            {
                for (int c = 0; c < Dim; c++) row[c] = Value(token, c);
            })
            .Write(path);
        FoundationModelVocabulary fm = FoundationModelVocabulary.Load(path);
        Assert.Equal((Vocab, Dim, 2048), (fm.VocabSize, fm.Dim, fm.ContextLength));
        var row = new float[Dim];
        foreach (int token in new[] { 0, 1, 150, Vocab - 1 })
        {
            fm.Table.Row(token, row);
            float[] expected = Enumerable.Range(0, Dim).Select(c => (float)(Half)Value(token, c)).ToArray();
            Assert.Equal(expected, row);
        }
        Assert.Throws<ArgumentException>(() => new GgufWriter().AddMatrix("x", GgmlType.Q8_0, 1, 32, (_, _) => { }));
    }

    [Fact]
    public void A_file_is_loaded_once_while_it_is_unchanged_and_again_when_it_changes()
    {
        string path = BigGguf(out _);
        FoundationModelVocabulary first = FoundationModelVocabulary.Load(path);
        Assert.Same(first, FoundationModelVocabulary.Load(Path.Combine(Path.GetDirectoryName(path)!, ".",
            Path.GetFileName(path))));
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddMinutes(1));
        Assert.NotSame(first, FoundationModelVocabulary.Load(path));
        Assert.Throws<FileNotFoundException>(() => FoundationModelVocabulary.Load(path + ".missing"));
        Assert.Throws<FileNotFoundException>(() => FoundationModelVocabulary.Load(path + ".missing"));
    }

    [Fact]
    public void A_table_past_the_end_of_its_file_or_in_an_unreadable_type_is_refused()
    {
        string path = Path.Combine(TempDir.Create(), "short.bin");
        File.WriteAllBytes(path, new byte[100]);
        Assert.Throws<TensorFileException>(() => MappedEmbeddingTable.Open(path, 0, GgmlType.F32, 10, 4));
        Assert.Throws<TensorFileException>(() => MappedEmbeddingTable.Open(path, 0, GgmlType.Q4_K, 1, 4));
        Assert.Throws<TensorFileException>(() => MappedEmbeddingTable.Open(path, 0, GgmlType.Q8_0, 1, 33));
        using MappedEmbeddingTable ok = MappedEmbeddingTable.Open(path, 4, GgmlType.F32, 6, 4);
        var row = new float[4];
        ok.Row(5, row);
        Assert.Equal(new float[4], row);
    }
}
