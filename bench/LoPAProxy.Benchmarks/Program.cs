using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/LoPAProxy.Benchmarks -- --filter '*Gemm*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, new LoPAProxy.Benchmarks.BenchConfig());
