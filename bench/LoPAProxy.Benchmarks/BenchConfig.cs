using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace LoPAProxy.Benchmarks;

/// <summary>Short in-process runs (this 2-core machine is noisy: compare ratios within one run) plus throughput columns.</summary>
public sealed class BenchConfig : ManualConfig
{
    public BenchConfig()
    {
        AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance)
            .WithLaunchCount(1).WithWarmupCount(3).WithIterationCount(7).WithId("short-inproc"));
        AddColumnProvider(DefaultColumnProviders.Instance);
        AddColumn(new ThroughputColumn());
        AddExporter(MarkdownExporter.GitHub);
        AddLogger(BenchmarkDotNet.Loggers.ConsoleLogger.Default);
        WithOptions(ConfigOptions.DisableOptimizationsValidator);
    }
}

/// <summary>Benchmarks that know their work report it: GFLOP/s for GEMM, GB/s for element-wise kernels.</summary>
public interface IWork
{
    /// <summary>(amount per invocation, unit) for the current parameters.</summary>
    (double Amount, string Unit) Work();
}

public sealed class ThroughputColumn : IColumn
{
    public string Id => "Throughput";
    public string ColumnName => "Throughput";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "GFLOP/s (GEMM: 2·M·N·K per call) or GB/s (element-wise: bytes read + written)";
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var report = summary[benchmarkCase];
        if (report?.ResultStatistics == null) return "-";
        if (Activator.CreateInstance(benchmarkCase.Descriptor.Type) is not IWork instance) return "-";
        foreach (var p in benchmarkCase.Parameters.Items)
            benchmarkCase.Descriptor.Type.GetProperty(p.Name)?.SetValue(instance, p.Value);
        var (amount, unit) = instance.Work();
        double seconds = report.ResultStatistics.Mean / 1e9;
        return $"{amount / seconds / 1e9:F1} {unit}";
    }
}
