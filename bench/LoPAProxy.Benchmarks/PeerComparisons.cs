using System.Diagnostics;
using System.Text.Json;
using LoPAProxy.Core.Encoders;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// Same-run comparisons against the named peers (the targets), run as
/// `dotnet run -c Release -- compare use-lite`. Each side is warmed up, then timed on the same inputs.
/// </summary>
public static class PeerComparisons
{
    public static int Run(string what) => what switch
    {
        "use-lite" => CompareUseLite(),
        _ => throw new ArgumentException("compare use-lite | encoders | proxy | proxy-memory | rewrite-memory | store | train"),
    };

    /// <summary>A sentence that tokenises to exactly <paramref name="tokens"/> USE-lite tokens.</summary>
    public static string SentenceOfTokens(UseLiteEncoder encoder, int tokens, int variant)
    {
        string[] words = { "the", "movie", "was", "surprisingly", "good", "and", "my", "friends", "loved", "it", "too" };
        var list = new List<string>();
        int i = variant;
        while (encoder.Tokenize(string.Join(' ', list)).Length < tokens) list.Add(words[i++ % words.Length]);
        while (encoder.Tokenize(string.Join(' ', list)).Length > tokens) list.RemoveAt(list.Count - 1);
        return string.Join(' ', list);
    }

    internal static string RepoDir()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "LoPAProxy.sln"))) return d.FullName;
        throw new DirectoryNotFoundException("run from inside the repository");
    }

    private static double TimeMs(Action action, int minRuns = 20, double minSeconds = 2)
    {
        for (int i = 0; i < 5; i++) action();
        var sw = Stopwatch.StartNew();
        int runs = 0;
        while (runs < minRuns || sw.Elapsed.TotalSeconds < minSeconds) { action(); runs++; }
        return sw.Elapsed.TotalMilliseconds / runs;
    }

    private static int CompareUseLite()
    {
        var encoder = UseLiteEncoder.Load(EncoderFactory.UseLiteDirectory(new EncoderOptions()));
        string[] sentences = { SentenceOfTokens(encoder, 16, 0), SentenceOfTokens(encoder, 16, 3), SentenceOfTokens(encoder, 128, 0), SentenceOfTokens(encoder, 128, 5),
            "The movie was great.", "I am driving to the store." };
        string input = Path.Combine(Path.GetTempPath(), $"use-bench-{Guid.NewGuid():N}.json");
        File.WriteAllText(input, JsonSerializer.Serialize(sentences));
        var psi = new ProcessStartInfo("node", $"use-lite.mjs {input} 30") { WorkingDirectory = Path.Combine(RepoDir(), "tests", "node"), RedirectStandardOutput = true, RedirectStandardError = true };
        using var node = Process.Start(psi)!;
        string json = node.StandardOutput.ReadToEnd();
        node.WaitForExit();
        double[] tfjs = JsonDocument.Parse(json).RootElement.GetProperty("warmMs").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var output = new float[512];
        Console.WriteLine("| sentence tokens | TF.js (pure JS, CPU) ms | ours ms | ours / TF.js |");
        Console.WriteLine("|---:|---:|---:|---:|");
        for (int i = 0; i < sentences.Length; i++)
        {
            int tokens = encoder.Tokenize(sentences[i]).Length;
            double ours = TimeMs(() => encoder.Encode(new[] { sentences[i] }, output));
            Console.WriteLine($"| {tokens} | {tfjs[i]:F2} | {ours:F3} | {ours / tfjs[i]:F3}× |");
        }
        File.Delete(input);
        return 0;
    }
}
