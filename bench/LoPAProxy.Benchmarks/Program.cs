using System.Globalization;
using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/LoPAProxy.Benchmarks -- --filter '*Gemm*'
// dotnet run -c Release --project bench/LoPAProxy.Benchmarks -- compare
// encoders|batching|proxy|proxy-memory|inspection-memory|rewrite-memory|vocabulary-memory|store|train|model-server|
// limits
if (args is ["compare", "batching", ..])
{
    return await LoPAProxy.Benchmarks.BatchingLoad.Run(args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 20,
        args.Length > 3 ? double.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture) : 2,
        args.Length > 4 && args[4] != "-" ? args[4].Split(',').Select(int.Parse).ToArray() : null,
        args.Length > 5 ? args[5] : "model");
}

if (args is ["compare", "model-server", ..])
{
    return await LoPAProxy.Benchmarks.ModelServerLoad.Run(args.Length > 2 && args[2] != "-" ? args[2] : null,
        args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 5);
}

if (args is ["compare", "encoders"]) return LoPAProxy.Benchmarks.EncoderComparison.Run();
if (args is ["compare", "rewrite-memory"]) return LoPAProxy.Benchmarks.RewriteMemory.Run();
if (args is ["compare", "vocabulary-memory"]) return LoPAProxy.Benchmarks.VocabularyMemory.Run();
if (args is ["compare", "proxy-memory", ..])
{
    return await LoPAProxy.Benchmarks.ProxyMemory.Run(args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 60, args.Length > 3
        ? int.Parse(args[3], CultureInfo.InvariantCulture) : 60);
}

if (args is ["compare", "inspection-memory", ..])
{
    return await LoPAProxy.Benchmarks.InspectionMemory.Run(args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 256,
        args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 4000, args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 60,
        args.Length > 5 ? int.Parse(args[5], CultureInfo.InvariantCulture) : 1);
}

if (args is ["compare", "proxy", ..])
{
    return await LoPAProxy.Benchmarks.ProxyLoad.Run(args.Length > 2
    ? int.Parse(args[2], CultureInfo.InvariantCulture) : 60);
}

if (args is ["compare", "store", ..])
{
    return await LoPAProxy.Benchmarks.StoreLoad.Run(args.Length > 2
    ? int.Parse(args[2], CultureInfo.InvariantCulture) : 10_000, args.Length > 3 ? args[3] : Environment.GetEnvironmentVariable("LOPA_TEST_PG"));
}

if (args is ["compare", "limits", ..])
{
    return await LoPAProxy.Benchmarks.LimiterLoad.Run(args.Length > 2
    ? int.Parse(args[2], CultureInfo.InvariantCulture) : 2000, args.Length > 3 ? args[3] : Environment.GetEnvironmentVariable("LOPA_TEST_PG"));
}

if (args is ["compare", "train", ..])
{
    return LoPAProxy.Benchmarks.TrainStepComparison.Run(args.Length > 2
    ? args[2] : "lopa", args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 40, args.Length > 4 ? args[4] : "stories260K",
    args.Length > 5 ? int.Parse(args[5], CultureInfo.InvariantCulture) : 2);
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, new LoPAProxy.Benchmarks.BenchConfig());
return 0;
