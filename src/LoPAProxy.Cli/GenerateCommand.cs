using System.CommandLine;
using System.Diagnostics;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.ModelServer.Generation;

namespace LoPAProxy.Cli;

/// <summary>
/// `lopa generate --model PATH --prompt TEXT [--max-tokens N] [--temperature T] [--top-p P] [--seed S] [--bench]`.
/// Prints the prompt and its continuation as llama2.c's run.c does; --bench reports tokens/s instead.
/// </summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "llama2.c checkpoint (.bin) or Hugging Face Llama directory", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "tokenizer.bin (default: beside the model)" };
        var prompt = new Option<string>("--prompt") { Description = "prompt text (default: none, BOS only)", DefaultValueFactory = _ => "" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "new tokens at most", DefaultValueFactory = _ => 256 };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy", DefaultValueFactory = _ => 0f };
        var topP = new Option<float>("--top-p") { Description = "nucleus mass", DefaultValueFactory = _ => 1f };
        var seed = new Option<ulong>("--seed") { Description = "sampling seed", DefaultValueFactory = _ => 42UL };
        var bench = new Option<bool>("--bench") { Description = "measure decode tokens/s (single stream), print the figures" };
        var streams = new Option<int>("--streams") { Description = "with --bench: concurrent independent streams", DefaultValueFactory = _ => 1 };
        var command = new Command("generate", "Generate text with a Llama-family model") { model, tokenizer, prompt, maxTokens, temperature, topP, seed, bench, streams };
        command.SetAction(parse =>
        {
            ServedModel served = ServedModel.Load(parse.GetValue(model)!, parse.GetValue(tokenizer));
            string text = parse.GetValue(prompt)!;
            int max = parse.GetValue(maxTokens);
            int[] tokens = served.Tokenizer.Encode(text, addBos: true, addEos: false);
            Sampler NewSampler(int i) => new(served.Tokenizer.VocabSize, parse.GetValue(temperature), parse.GetValue(topP), 0, parse.GetValue(seed) + (ulong)i);
            if (parse.GetValue(bench)) return Bench(served, tokens, max, parse.GetValue(streams), NewSampler);
            var stream = new TextStream(served.Tokenizer).After(tokens[0]);
            foreach (int t in tokens.Skip(1)) Console.Write(stream.Push(t));
            foreach (int t in served.Generator.Generate(served.Generator.EmbedTokens(tokens), tokens.Length, max, NewSampler(0), served.StopTokens))
                Console.Write(stream.Push(t));
            Console.WriteLine(stream.Flush());
            return 0;
        });
        return command;
    }

    private static int Bench(ServedModel served, int[] prompt, int maxTokens, int streams, Func<int, Sampler> sampler)
    {
        var none = new HashSet<int>(); // never stop early: every run decodes exactly maxTokens
        int Run(int i) => served.Generator.Generate(served.Generator.EmbedTokens(prompt), prompt.Length, maxTokens, sampler(i), none).Count();
        // Warm up past tiered JIT (tier-0 code is several times slower), then measure whole runs for at least 3 s.
        for (var warm = Stopwatch.StartNew(); warm.Elapsed.TotalSeconds < 2;) Run(0);
        var sw = Stopwatch.StartNew();
        int total = 0;
        do total += streams == 1 ? Run(0) : Enumerable.Range(0, streams).AsParallel().WithDegreeOfParallelism(streams).Select(Run).Sum();
        while (sw.Elapsed.TotalSeconds < 3);
        sw.Stop();
        Console.WriteLine($"model: {served.Name} (dim {served.Model.Config.Dim}, {served.Model.Config.Layers} layers), gemm: {served.Model.Gemm.Name}");
        Console.WriteLine($"streams: {streams}, tokens: {total}, seconds: {sw.Elapsed.TotalSeconds:F3}");
        Console.WriteLine($"tokens/s: {total / sw.Elapsed.TotalSeconds:F0}");
        return 0;
    }
}
