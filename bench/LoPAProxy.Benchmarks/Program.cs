using System.Globalization;
using BenchmarkDotNet.Running;
using LoPAProxy.Benchmarks;

// dotnet run -c Release --project bench/LoPAProxy.Benchmarks -- --filter '*Gemm*'
// dotnet run -c Release --project bench/LoPAProxy.Benchmarks -- compare
// encoders|batching|proxy|proxy-memory|inspection-memory|rewrite-memory|vocabulary-memory|store|train|model-server|
// limits|realistic
if (args is ["compare", "batching", ..])
{
    return await BatchingLoad.Run(Int(args, 2, 20),
        args.Length > 3 ? double.Parse(args[3], CultureInfo.InvariantCulture) : 2,
        args.Length > 4 && args[4] != "-" ? args[4].Split(',').Select(int.Parse).ToArray() : null,
        Text(args, 5, "model")!);
}

if (args is ["compare", "model-server", ..])
{
    return await ModelServerLoad.Run(args.Length > 2 && args[2] != "-" ? args[2] : null, Int(args, 3, 5));
}

if (args is ["instant-backend", var port])
{
    return await InstantBackend.Serve(int.Parse(port, CultureInfo.InvariantCulture));
}

if (args is ["compare", "realistic", ..])
{
    return await RealisticLoad.Run(Int(args, 2, 8), Text(args, 3, "llama2")!,
        Text(args, 4, "vllm-completions,sglang,vllm-chat")!.Split(','), Ints(args, 5, "128,512,2048,4000"),
        Ints(args, 6, "1,8,64"), Int(args, 7, 60));
}

if (args is ["compare", "encoders"]) return EncoderComparison.Run();
if (args is ["compare", "rewrite-memory", ..]) return RewriteMemory.Run(Text(args, 2, "stories")!);
if (args is ["compare", "vocabulary-memory"]) return VocabularyMemory.Run();
if (args is ["compare", "proxy-memory", ..]) return await ProxyMemory.Run(Int(args, 2, 60), Int(args, 3, 60));
if (args is ["compare", "inspection-memory", ..])
{
    return await InspectionMemory.Run(Int(args, 2, 256), Int(args, 3, 4000), Int(args, 4, 60), Int(args, 5, 1));
}

if (args is ["compare", "proxy", ..]) return await ProxyLoad.Run(Int(args, 2, 60));
if (args is ["compare", "store", ..])
{
    return await StoreLoad.Run(Int(args, 2, 10_000), Text(args, 3, Environment.GetEnvironmentVariable("LOPA_TEST_PG")));
}

if (args is ["compare", "limits", ..])
{
    return await LimiterLoad.Run(Int(args, 2, 2000), Text(args, 3, Environment.GetEnvironmentVariable("LOPA_TEST_PG")));
}

if (args is ["compare", "train", ..])
{
    return TrainStepComparison.Run(Text(args, 2, "lopa")!, Int(args, 3, 40), Text(args, 4, "stories260K")!,
        Int(args, 5, 2));
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, new BenchConfig());
return 0;

// The i-th argument as a whole number, or the default when it is not given.
static int Int(string[] args, int i, int fallback) =>
    args.Length > i ? int.Parse(args[i], CultureInfo.InvariantCulture) : fallback;

static string? Text(string[] args, int i, string? fallback) => args.Length > i ? args[i] : fallback;

static int[] Ints(string[] args, int i, string fallback) =>
    Text(args, i, fallback)!.Split(',').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();
