using System.Globalization;
using LoPAProxy.Core.FoundationModels;
using LoPAProxy.Engine.Formats.Gguf;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- compare vocabulary-memory`: what a Llama-2-7B-size embedding table (32,000 × 4,096,
/// float32, 524 MB — a synthetic GGUF with a real-sized vocabulary, written to /tmp) costs the proxy: managed bytes
/// allocated and RSS after loading the foundation model (tokenizer + mapped table), after reading 4,000 rows (a
/// 4k-token prompt) and after reading every row once — beside the old way, the whole table copied into a float[],
/// measured in the same process.
/// </summary>
public static class VocabularyMemory
{
    public static int Run()
    {
        const int Vocab = 32_000, Dim = 4096;
        string path = Path.Combine(Path.GetTempPath(), "lopa-vocabulary-4096.gguf");
        if (!File.Exists(path)) Write(path, Vocab, Dim);
        GC.Collect();
        var rss0 = Rss();
        long heap0 = GC.GetTotalAllocatedBytes(precise: true);
        FoundationModelVocabulary fm = FoundationModelVocabulary.Load(path);
        long heap1 = GC.GetTotalAllocatedBytes(precise: true);
        var rss1 = Rss();
        var row = new float[Dim];
        var random = new Random(1);
        for (int i = 0; i < 4000; i++) fm.Table.Row(random.Next(Vocab), row);
        var rss2 = Rss();
        for (int t = 0; t < Vocab; t++) fm.Table.Row(t, row);
        var rss3 = Rss();
        GC.Collect();
        long heapOld0 = GC.GetTotalAllocatedBytes(precise: true);
        float[] copied = GgufFile.Open(path).ReadFloat32("token_embd.weight");
        long heapOld = GC.GetTotalAllocatedBytes(precise: true) - heapOld0;
        var rss4 = Rss();
        Console.WriteLine($"table file: {new FileInfo(path).Length / 1e6:F0} MB ({Vocab} × {Dim} float32)");
        Console.WriteLine("| | managed bytes allocated | RSS anonymous (heap) growth | RSS file-backed growth |");
        Console.WriteLine("|---|---:|---:|---:|");
        Console.WriteLine($"| load (tokenizer + mapped table) | {Mb(heap1 - heap0)} | {Growth(rss1, rss0)} |");
        Console.WriteLine($"| + 4,000 random rows read | | {Growth(rss2, rss0)} |");
        Console.WriteLine($"| + every row read once | | {Growth(rss3, rss0)} |");
        Console.WriteLine($"| then the old way too: the table copied into a float[] | {Mb(heapOld)} | " +
            $"{Growth(rss4, rss0)} |");
        GC.KeepAlive(copied);
        GC.KeepAlive(fm);
        return 0;
    }

    private static void Write(string path, int vocab, int dim)
    {
        var table = new float[(long)vocab * dim];
        var random = new Random(7);
        for (long i = 0; i < table.Length; i++) table[i] = (float)(random.NextDouble() - 0.5) * 0.02f;
        string[] pieces = Enumerable.Range(0, vocab).Select(i => i < 3 ? $"<{i}>" : $"p{i}").ToArray();
        new GgufWriter()
            .Add("general.architecture", "llama")
            .Add("llama.context_length", 4096u)
            .Add("tokenizer.ggml.model", "llama")
            .Add("tokenizer.ggml.tokens", pieces)
            .Add("tokenizer.ggml.scores", new float[vocab])
            .Add("tokenizer.ggml.token_type", Enumerable.Range(0, vocab).Select(i => i < 3 ? 3 : 1).ToArray())
            .AddTensor("token_embd.weight", table, dim, vocab)
            .Write(path);
    }

    private static string Mb(long bytes) => (bytes / 1e6).ToString("F1", CultureInfo.InvariantCulture) + " MB";

    /// <summary>Anonymous (heap) and file-backed (mapped, reclaimable by the kernel) resident bytes.</summary>
    private static (long Anon, long File) Rss() => (Status("RssAnon:"), Status("RssFile:"));

    private static long Status(string field)
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(field, StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1],
                    CultureInfo.InvariantCulture) * 1024;
            }
        }
        return 0;
    }

    private static string Growth((long Anon, long File) now, (long Anon, long File) start) =>
        $"{Mb(now.Anon - start.Anon)} | {Mb(now.File - start.File)}";
}
