using System.Globalization;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Core.Generation;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Cli.Tests;

public class AdapterCliTests
{
    [Fact]
    public void New_inspect_encode_embed_end_to_end_with_minilm()
    {
        string dir = Path.Combine(TempDir.Create(), "adapter");
        using (var create = new LopaProcess("adapter", "new", "--encoder", "minilm", "--token-dim", "64", "--out", dir,
            "--seed", "7", "--base-model", "stories260K"))
        {
            Assert.True(create.WaitForExit() == 0, create.Stderr);
        }

        using (var inspect = new LopaProcess("adapter", "inspect", dir))
        {
            Assert.Equal(0, inspect.WaitForExit());
            Assert.Contains("composition:          lopa", inspect.Stdout);
            // 10·64 + (384·256 + 256 + 256·40 + 40) + (384·256 + 256 + 256·256 + 256)
            Assert.Contains($"trainable parameters: {10 * 64 + (384 * 256 + 256 + 256 * 40 + 40) + (384 * 256 + 256 + 256 * 256 + 256):N0}", inspect.Stdout);
        }
        const string text = "The movie was great.";
        foreach (string dtype in new[] { "fp32", "bf16" })
        {
            string zPath = Path.Combine(Path.GetDirectoryName(dir)!, $"z-{dtype}.pt");
            using (var encode = new LopaProcess("encode", "--adapter", dir, "--text", text, "--out", zPath, "--dtype",
                dtype))
            {
                Assert.True(encode.WaitForExit(120) == 0, encode.Stderr);
            }
            // What vLLM does with it: torch.load(weights_only=True).
            string[] loaded = PyTorch.Run("""
                import sys, torch
                z = torch.load(sys.argv[1], weights_only=True, map_location='cpu')
                print(str(z.dtype), list(z.shape))
                print(' '.join(repr(float(v)) for v in z.float().flatten()))
                """, zPath).Trim().Split('\n');
            Assert.Equal(dtype == "fp32" ? "torch.float32 [10, 64]" : "torch.bfloat16 [10, 64]", loaded[0]);
            float[] fromTorch = loaded[1].Split(' ').Select(s => float.Parse(s,
                CultureInfo.InvariantCulture)).ToArray();
            var x = new float[384];
            EncoderFactory.Create("minilm", new EncoderOptions()).Encode(new[] { text }, x);
            float[] z = new SoftPromptGenerator(LopaAdapter.Load(dir)).Generate(x, 1);
            if (dtype == "bf16")
            {
                z = z.Select(v =>
                LoPAProxy.Engine.Tensors.FloatConvert.FromBFloat16Bits(LoPAProxy.Engine.Tensors.FloatConvert.ToBFloat16Bits(v))).ToArray();
            }

            Assert.Equal(z, fromTorch);
        }
        using var embed = new LopaProcess("embed", "--encoder", "minilm", "--text", text, "--json");
        Assert.Equal(0, embed.WaitForExit(120));
        float[] vector = System.Text.Json.JsonSerializer.Deserialize<float[]>(embed.Stdout)!;
        Assert.Equal(384, vector.Length);
        Assert.Equal(-0.0953245f, vector[0],
            5); // tests/python/bert_onnx_reference.py (PyTorch, float64) on the same weights
    }

    [Fact]
    public void Bad_adapters_and_options_are_one_line_errors()
    {
        string dir = TempDir.Create();
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"),
            "{\"peft_type\": \"LOPA\", \"num_virtual_tokens\": 0, \"token_dim\": 64}");
        File.WriteAllBytes(Path.Combine(dir, "adapter_model.safetensors"), new byte[16]);
        using var inspect = new LopaProcess("adapter", "inspect", dir);
        Assert.Equal(1, inspect.WaitForExit());
        Assert.StartsWith("lopa: 'num_virtual_tokens' = 0", inspect.Stderr);
        using var bad = new LopaProcess("adapter", "new", "--encoder", "magic", "--token-dim", "64", "--out",
            Path.Combine(dir, "x"));
        Assert.Equal(1, bad.WaitForExit());
        Assert.Contains("unknown encoder 'magic'", bad.Stderr);
        using var noDim = new LopaProcess("adapter", "new", "--encoder", "bert", "--token-dim", "64", "--out",
            Path.Combine(dir, "y"));
        Assert.Equal(1, noDim.WaitForExit());
        Assert.Contains("give its width with --encoder-dim",
            noDim.Stderr); // "bert" is now any ONNX directory: its width is not known
    }
}
