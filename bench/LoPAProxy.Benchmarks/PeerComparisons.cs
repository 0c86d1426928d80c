using System.Diagnostics;
using System.Text.Json;
using LoPAProxy.Core.Encoders;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// Same-run comparisons against the named peers (the targets), run as
/// `dotnet run -c Release -- compare use-lite|bert`. Each side is warmed up, then timed on the same inputs.
/// </summary>
public static class PeerComparisons
{
    public static int Run(string what) => what switch
    {
        "use-lite" => CompareUseLite(),
        "bert" => CompareBert(),
        _ => throw new ArgumentException("compare use-lite | bert"),
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

    private static int CompareBert()
    {
        // BERT-base-size (12 × 768, 12 heads, 3072) random weights, written by PyTorch; both sides run 128 tokens.
        string dir = Path.Combine(Path.GetTempPath(), "lopa-bert-base");
        Directory.CreateDirectory(dir);
        string script = """
            import sys, json, struct, time, torch
            d = sys.argv[1]; torch.set_num_threads(2); torch.manual_seed(0)
            H, L, heads, I, V, P = 768, 12, 12, 3072, 30522, 512
            import os
            if not os.path.exists(d + '/model.safetensors'):
                json.dump({'model_type': 'bert', 'hidden_size': H, 'num_hidden_layers': L, 'num_attention_heads': heads, 'intermediate_size': I,
                           'vocab_size': V, 'max_position_embeddings': P, 'type_vocab_size': 2, 'layer_norm_eps': 1e-12, 'hidden_act': 'gelu'}, open(d + '/config.json', 'w'))
                W = {'embeddings.word_embeddings.weight': torch.randn(V, H) * 0.02, 'embeddings.position_embeddings.weight': torch.randn(P, H) * 0.02,
                     'embeddings.token_type_embeddings.weight': torch.randn(2, H) * 0.02, 'embeddings.LayerNorm.weight': torch.ones(H), 'embeddings.LayerNorm.bias': torch.zeros(H)}
                for l in range(L):
                    p = f'encoder.layer.{l}.'
                    for n, o, i in [('attention.self.query', H, H), ('attention.self.key', H, H), ('attention.self.value', H, H), ('attention.output.dense', H, H), ('intermediate.dense', I, H), ('output.dense', H, I)]:
                        W[p + n + '.weight'] = torch.randn(o, i) * 0.02; W[p + n + '.bias'] = torch.zeros(o)
                    for n in ['attention.output.LayerNorm', 'output.LayerNorm']: W[p + n + '.weight'] = torch.ones(H); W[p + n + '.bias'] = torch.zeros(H)
                header, off = {}, 0
                for k, t in W.items(): n_ = t.numel() * 4; header[k] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [off, off + n_]}; off += n_
                h = json.dumps(header).encode(); h += b' ' * ((8 - len(h) % 8) % 8)
                with open(d + '/model.safetensors', 'wb') as f:
                    f.write(struct.pack('<Q', len(h)) + h)
                    for t in W.values(): f.write(t.contiguous().numpy().astype('<f4').tobytes())
                open(d + '/vocab.txt', 'w').write('\n'.join(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + [f'w{i}' for i in range(V - 5)]))
            # The same maths as ours, functional (F.linear, layer_norm, gelu), 128 tokens, no grad.
            raw = open(d + '/model.safetensors', 'rb').read(); n = struct.unpack('<Q', raw[:8])[0]; hd = json.loads(raw[8:8 + n]); data = raw[8 + n:]
            W = {k: torch.frombuffer(bytearray(data[v['data_offsets'][0]:v['data_offsets'][1]]), dtype=torch.float32).reshape(v['shape']) for k, v in hd.items()}
            F = torch.nn.functional
            torch.set_num_threads(int(sys.argv[2]))
            ids = torch.randint(5, V, (128,))
            def run():
                with torch.no_grad():
                    ln = lambda x, p: F.layer_norm(x, (H,), W[p + '.weight'], W[p + '.bias'], 1e-12)
                    lin = lambda x, p: F.linear(x, W[p + '.weight'], W[p + '.bias'])
                    x = ln(W['embeddings.word_embeddings.weight'][ids] + W['embeddings.position_embeddings.weight'][:128] + W['embeddings.token_type_embeddings.weight'][0], 'embeddings.LayerNorm')
                    for l in range(L):
                        p = f'encoder.layer.{l}.'
                        hs = lambda t: t.view(128, heads, H // heads).transpose(0, 1)
                        q, k, v = hs(lin(x, p + 'attention.self.query')), hs(lin(x, p + 'attention.self.key')), hs(lin(x, p + 'attention.self.value'))
                        a = ((q @ k.transpose(1, 2)) / (H // heads) ** 0.5).softmax(-1) @ v
                        x = ln(lin(a.transpose(0, 1).reshape(128, H), p + 'attention.output.dense') + x, p + 'attention.output.LayerNorm')
                        x = ln(lin(F.gelu(lin(x, p + 'intermediate.dense')), p + 'output.dense') + x, p + 'output.LayerNorm')
                    return x.mean(0)
            for _ in range(3): run()
            t = time.perf_counter(); k = 0
            while time.perf_counter() - t < 3 or k < 10: run(); k += 1
            print((time.perf_counter() - t) / k * 1000)
            """;
        string scriptPath = Path.Combine(dir, "bench.py");
        File.WriteAllText(scriptPath, script);
        // PyTorch two ways on 2 cores: as configured by torch.set_num_threads(2) (its OpenMP pool and OpenBLAS's
        // pthreads both take 2 threads and contend), and tuned (OpenMP 1, OpenBLAS 2: the GEMMs get both cores).
        double Torch(int torchThreads, int blasThreads)
        {
            var psi = new ProcessStartInfo("/usr/bin/python3", $"{scriptPath} {dir} {torchThreads}") { RedirectStandardOutput = true };
            psi.Environment["OMP_NUM_THREADS"] = torchThreads.ToString();
            psi.Environment["OPENBLAS_NUM_THREADS"] = blasThreads.ToString();
            using var py = Process.Start(psi)!;
            string ms = py.StandardOutput.ReadToEnd().Trim();
            py.WaitForExit();
            if (py.ExitCode != 0) throw new InvalidOperationException("the PyTorch side failed");
            return double.Parse(ms.Split('\n')[^1], System.Globalization.CultureInfo.InvariantCulture);
        }
        double torchDefault = Torch(2, 2), torchTuned = Torch(1, 2);
        var encoder = BertEncoder.Load(dir);
        string text = string.Join(' ', Enumerable.Range(0, 126).Select(i => $"w{i * 37 % 30000}"));
        if (encoder.Tokenize(text).Length != 128) throw new InvalidOperationException("expected 128 tokens");
        var output = new float[768];
        double ours = TimeMs(() => encoder.Encode(new[] { text }, output), minRuns: 10, minSeconds: 3);
        Console.WriteLine("| BERT-base size, 128 tokens, same weights | ms per sentence | ours / it |");
        Console.WriteLine("|---|---:|---:|");
        Console.WriteLine($"| PyTorch 1.13 + OpenBLAS, torch.set_num_threads(2) | {torchDefault:F1} | {ours / torchDefault:F2}× |");
        Console.WriteLine($"| PyTorch 1.13 + OpenBLAS, OpenMP 1 / OpenBLAS 2 threads (tuned) | {torchTuned:F1} | {ours / torchTuned:F2}× |");
        Console.WriteLine($"| ours ({LoPAProxy.Engine.Blas.Gemm.Default.Name}) | {ours:F1} | 1.00× |");
        return 0;
    }
}
