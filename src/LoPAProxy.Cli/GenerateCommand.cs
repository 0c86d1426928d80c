using System.CommandLine;
using LoPAProxy.ModelServer;
using LoPAProxy.ModelServer.Generation;

namespace LoPAProxy.Cli;

/// <summary>
/// `lopa generate --model PATH --prompt TEXT [--max-tokens N] [--temperature T] [--top-p P] [--seed S]`: prints the
/// prompt and its continuation as llama2.c's run.c does, on the model server's engine (llama.cpp). --bench
/// [--streams N] measures decode tokens/s instead: N sequences decoded together, end-of-text ignored.
/// </summary>
internal static class GenerateCommand
{
    private static readonly Option<string> Model = new("--model")
    {
        Description = "a GGUF file, or a llama2.c checkpoint (.bin)", Required = true,
    };
    private static readonly Option<string?> Tokenizer = new("--tokenizer")
    {
        Description = "a llama2.c checkpoint's tokenizer.bin (default: beside it)",
    };
    private static readonly Option<string> Prompt = new("--prompt")
    {
        Description = "prompt text (default: none, BOS only)", DefaultValueFactory = _ => "",
    };
    private static readonly Option<int> MaxTokens = new("--max-tokens")
    {
        Description = "new tokens at most", DefaultValueFactory = _ => 256,
    };
    private static readonly Option<float> Temperature = new("--temperature")
    {
        Description = "0 = greedy", DefaultValueFactory = _ => 0f,
    };
    private static readonly Option<float> TopP = new("--top-p")
    {
        Description = "nucleus mass", DefaultValueFactory = _ => 1f,
    };
    private static readonly Option<uint> Seed = new("--seed")
    {
        Description = "sampling seed", DefaultValueFactory = _ => 42u,
    };
    private static readonly Option<int?> Threads = new("--threads") { Description = "llama.cpp threads" };
    private static readonly Option<bool> Bench = new("--bench") { Description = "measure decode tokens/s" };
    private static readonly Option<int> Streams = new("--streams")
    {
        Description = "with --bench: sequences decoded together", DefaultValueFactory = _ => 1,
    };

    public static Command Create()
    {
        var command = new Command("generate", "Generate text with a GGUF or llama2.c model (llama.cpp)")
        {
            Model, Tokenizer, Prompt, MaxTokens, Temperature, TopP, Seed, Threads, Bench, Streams,
        };
        command.SetAction(RunAsync);
        return command;
    }

    private static async Task<int> RunAsync(ParseResult parse, CancellationToken cancel)
    {
        var options = new ModelServerOptions
        {
            ModelPath = parse.GetValue(Model)!,
            TokenizerPath = parse.GetValue(Tokenizer),
            MaxConcurrent = Math.Max(1, parse.GetValue(Streams)),
            Threads = parse.GetValue(Threads),
        };
        using ServedModel served = ServedModel.Load(options);
        using var decoder = new BatchDecoder(served, options);
        string text = parse.GetValue(Prompt)!;
        int[] tokens = text.Length == 0 ? served.Tokenize("", addBos: true) : served.Tokenize(text, addBos: true);
        if (tokens.Length == 0) tokens = new[] { served.BosToken };
        int max = Math.Min(parse.GetValue(MaxTokens), served.ContextLength - tokens.Length);
        var sampling = new SamplingSettings(parse.GetValue(Temperature), parse.GetValue(TopP), 0, parse.GetValue(Seed));
        var prompt = new PromptInput(new[] { PromptPiece.OfTokens(tokens) });
        if (parse.GetValue(Bench))
            return await BenchAsync(served, decoder, prompt, max, sampling with { IgnoreEos = true }, cancel);
        Console.Write(text);
        await foreach (TextDelta delta in ChoiceRunner.RunAsync(served, decoder, prompt, max, sampling,
                           Array.Empty<string>(), cancel))
        {
            Console.Write(delta.Text);
        }

        Console.WriteLine();
        return 0;
    }

    /// <summary>Whole runs of max tokens on every slot at once, after 2 s of warm-up, for at least 3 s.</summary>
    private static async Task<int> BenchAsync(ServedModel served, BatchDecoder decoder, PromptInput prompt, int max,
        SamplingSettings sampling, CancellationToken cancel)
    {
        async Task<int> Round()
        {
            var runs = Enumerable.Range(0, decoder.Slots).Select(async _ =>
            {
                GenerationHandle handle = decoder.Start(prompt, max, sampling, cancel);
                int count = 0;
                await foreach (SampledToken token in handle.Tokens.ReadAllAsync(cancel)) count++;
                return count;
            });
            return (await Task.WhenAll(runs)).Sum();
        }
        for (var warm = System.Diagnostics.Stopwatch.StartNew(); warm.Elapsed.TotalSeconds < 2;) await Round();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int total = 0;
        do total += await Round();
        while (clock.Elapsed.TotalSeconds < 3);
        Console.WriteLine($"model: {served.Name} (dim {served.HiddenSize}), engine: llama.cpp, " +
            $"{decoder.Threads} threads, {decoder.KvCacheType} KV cache");
        Console.WriteLine($"streams: {decoder.Slots}, tokens: {total}, seconds: {clock.Elapsed.TotalSeconds:F3}");
        Console.WriteLine($"tokens/s: {total / clock.Elapsed.TotalSeconds:F0}");
        return 0;
    }
}
