using BenchmarkDotNet.Attributes;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Core.Generation;

namespace LoPAProxy.Benchmarks;

/// <summary>
/// The proxy's per-request work: USE-lite encoder + LoPA generator (m = 10, r = 4, H = 256) for a batch of
/// instances of 16 or 128 tokens. Report per-instance latency = Mean / Batch.
/// </summary>
public class SoftPromptBenchmarks
{
    [Params(288, 2048, 4096)] public int D { get; set; }
    [Params(16, 128)] public int Tokens { get; set; }
    [Params(1, 8, 32)] public int Batch { get; set; }

    private LoPAProxy.Core.Encoders.Onnx.OnnxSentenceEncoder _encoder = null!;
    private SoftPromptGenerator _generator = null!;
    private SoftPromptGenerator.Workspace _workspace = null!;
    private string[] _texts = null!;
    private float[] _x = null!, _z = null!;

    [GlobalSetup]
    public void Setup()
    {
        _encoder = (LoPAProxy.Core.Encoders.Onnx.OnnxSentenceEncoder)EncoderFactory.Create("minilm",
            new EncoderOptions());
        var config = new AdapterConfig
        {
            NumVirtualTokens = 10, TokenDim = D, Rank = 4, HiddenSize = 256,
            Encoder = "minilm", EncoderDim = 384
        };
        _generator = new SoftPromptGenerator(LopaAdapter.CreateRandom(config, 1));
        _workspace = _generator.NewWorkspace();
        _texts = Enumerable.Range(0, Batch).Select(i => EncoderComparison.SentenceOfTokens(_encoder, Tokens,
            i)).ToArray();
        _x = new float[Batch * 384];
        _z = new float[Batch * 10 * D];
    }

    [Benchmark(Description = "encoder+generator")]
    public void EncodeAndGenerate()
    {
        _encoder.Encode(_texts, _x);
        _generator.Generate(_x, Batch, _z, _workspace);
    }

    [Benchmark(Description = "generator only")]
    public void GenerateOnly() => _generator.Generate(_x, Batch, _z, _workspace);
}
