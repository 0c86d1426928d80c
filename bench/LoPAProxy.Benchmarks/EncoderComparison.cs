using System.Diagnostics;
using LoPAProxy.Core.Encoders.Onnx;
using LoPAProxy.Engine.Blas;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// `dotnet run -c Release -- compare encoders`: all-MiniLM-L6-v2 on ONNX Runtime with 2 and 1 intra-op threads,
/// batch 1 at 16/64/128 tokens and batch 8 and 32 at 64 tokens, plus the FLOP efficiency of ORT at 32 × 64 against
/// this machine's sgemm peak (the better of OpenBLAS and the engine's managed AVX-512 kernel, 2048³) measured in the
/// same run. ORT: 2 intra-op threads, spinning off;
/// The same table against the project's retired hand-written BERT (same weights) is in docs/encoders.md, measured by
/// this benchmark before that engine was deleted.
/// </summary>
public static class EncoderComparison
{
    public static int Run()
    {
        string onnxDir = PackagedEncoders.Directory(PackagedEncoders.MiniLm);
        var ort2 = OnnxSentenceEncoder.Load("minilm", onnxDir, new OnnxEncoderSettings { Threads = 2 });
        var ort1 = OnnxSentenceEncoder.Load("minilm", onnxDir, new OnnxEncoderSettings { Threads = 1 });
        Console.WriteLine("| all-MiniLM-L6-v2 (spinning off) | ORT 2 threads ms | ORT 1 thread ms | max abs diff 2 vs 1 |");
        Console.WriteLine("|---|---:|---:|---:|");
        foreach (var (batch, tokens) in new[] { (1, 16), (1, 64), (1, 128), (8, 64), (32, 64) })
        {
            string[] texts = Enumerable.Range(0, batch).Select(v => SentenceOfTokens(ort2, tokens, v)).ToArray();
            var a = new float[batch * 384];
            var b = new float[batch * 384];
            double ort2Ms = TimeMs(() => ort2.Encode(texts, a));
            double ort1Ms = TimeMs(() => ort1.Encode(texts, b));
            double diff = a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
            Console.WriteLine($"| batch {batch} × {tokens} tokens | {ort2Ms:F2} | {ort1Ms:F2} | {diff:E1} |");
        }

        string[] big = Enumerable.Range(0, 32).Select(v => SentenceOfTokens(ort2, 64, v)).ToArray();
        var output = new float[32 * 384];
        double ms = TimeMs(() => ort2.Encode(big, output));
        const int D = 384, Layers = 6, Tokens = 64, Batch = 32;
        double flops = (double)Batch * Tokens * Layers * (24.0 * D * D + 4.0 * Tokens * D);
        double peak = SgemmPeakGflops();
        Console.WriteLine();
        Console.WriteLine($"ORT (2 threads) at batch 32 × 64 tokens: {ms:F1} ms = {flops / ms / 1e6:F1} GFLOP/s; " +
            $"sgemm peak (best of OpenBLAS and the managed AVX-512 kernel, 2048³, same run): {peak:F1} GFLOP/s → {flops / ms / 1e6 / peak:P0} of peak");
        return 0;
    }

    /// <summary>A sentence that tokenises to exactly <paramref name="tokens"/> WordPiece tokens ([CLS] and [SEP]
    /// included).</summary>
    internal static string SentenceOfTokens(OnnxSentenceEncoder encoder, int tokens, int variant)
    {
        string[] words = { "the", "movie", "was", "surprisingly", "good", "and", "my", "friends", "loved", "it",
            "too" };
        var list = new List<string>();
        int i = variant;
        while (encoder.Tokenize(string.Join(' ', list)).Length < tokens) list.Add(words[i++ % words.Length]);
        while (encoder.Tokenize(string.Join(' ', list)).Length > tokens) list.RemoveAt(list.Count - 1);
        return string.Join(' ', list);
    }

    private static double SgemmPeakGflops()
    {
        const int N = 2048;
        var a = new float[N * N];
        var b = new float[N * N];
        var c = new float[N * N];
        for (int i = 0; i < a.Length; i++)
        {
            a[i] = (i % 17) * 0.01f;
            b[i] = (i % 13) * 0.01f;
        }
        // The managed AVX-512 kernel this project keeps (the OpenBLAS backend retired with the hand-written Llama).
        double managed = TimeMs(() => Gemm.Managed.Sgemm(false, false, N, N, N, 1f, a, N, b, N, 0f, c, N), minRuns: 5);
        return 2.0 * N * N * N / managed / 1e6;
    }

    private static double TimeMs(Action action, int minRuns = 20, double minSeconds = 2)
    {
        for (int i = 0; i < 3; i++) action();
        var sw = Stopwatch.StartNew();
        int runs = 0;
        while (runs < minRuns || sw.Elapsed.TotalSeconds < minSeconds)
        {
            action();
            runs++;
        }
        return sw.Elapsed.TotalMilliseconds / runs;
    }
}
