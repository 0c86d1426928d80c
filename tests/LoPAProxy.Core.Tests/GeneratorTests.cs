using System.Globalization;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Generation;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Core.Tests;

public class GeneratorTests
{
    /// <summary>The paper's reference generator in PyTorch (nn.Linear heads, einsum, sigmoid gate), reading our
    /// adapter directory.</summary>
    internal const string Reference = """
        import sys, json, struct, torch
        d = sys.argv[1]
        cfg = json.load(open(d + '/adapter_config.json'))
        raw = open(d + '/adapter_model.safetensors', 'rb').read()
        n = struct.unpack('<Q', raw[:8])[0]; header = json.loads(raw[8:8 + n]); data = raw[8 + n:]
        W = {}
        for k, v in header.items():
            if k == '__metadata__': continue
            b, e = v['data_offsets']
            W[k] = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32).reshape(v['shape']).double()
        x = torch.frombuffer(bytearray(open(sys.argv[2], 'rb').read()), dtype=torch.float32).reshape(-1, cfg['encoder_dim']).double() if cfg['composition'] != 'prompt_tuning' else None
        m, dim, r = cfg['num_virtual_tokens'], cfg['token_dim'], cfg['rank']
        def head(dense, out, inp):
            lin = lambda t, name: torch.nn.functional.linear(t, W[name + '.weight'], W.get(name + '.bias'))
            return lin(torch.tanh(lin(inp, dense)), out)
        comp = cfg['composition']
        if comp == 'prompt_tuning':
            z = W['prompt_embeddings'].unsqueeze(0)
        elif comp == 'idpg':
            z = head('layer_down_project', 'layer_up_project', x).view(-1, m, dim)
        else:
            u = head('row_dense', 'row_out_proj', x).view(-1, m, r)
            v = head('col_dense', 'col_out_proj', x).view(-1, dim, r)
            zi = torch.einsum('bir,bjr->bij', u, v)
            z = W['prompt_embeddings'] * torch.sigmoid(zi) if comp == 'lopa' else W['prompt_embeddings'] + zi
        for row in z.reshape(z.shape[0], -1): print(' '.join(repr(float(t)) for t in row))
        """;

    internal static AdapterConfig Config(Composition c, int d = 64, int h = 48) => new()
    {
        NumVirtualTokens = 10, TokenDim = d, Rank = 4, HiddenSize = 32, Encoder = "minilm", EncoderDim = h, Composition = c,
    };

    /// <summary>An adapter with non-trivial weights everywhere (random init has zero biases and tiny heads).</summary>
    public static LopaAdapter Random(AdapterConfig c, int seed)
    {
        var a = LopaAdapter.CreateRandom(c, seed);
        var rng = new Random(seed + 1);
        MlpHead? Bump(MlpHead? h) => h is null ? null : h with
        {
            DenseWeight = Rand.Floats(rng, h.DenseWeight.Length, 0.3f),
            DenseBias = Rand.Floats(rng, h.Hidden, 0.2f),
            OutWeight = Rand.Floats(rng, h.OutWeight.Length, 0.3f),
            OutBias = Rand.Floats(rng, h.Out, 0.2f),
        };
        return new LopaAdapter(c, a.PromptEmbeddings, Bump(a.U), Bump(a.V), Bump(a.Idpg));
    }

    [Theory]
    [InlineData(Composition.Lopa)]
    [InlineData(Composition.LopaAdd)]
    [InlineData(Composition.PromptTuning)]
    [InlineData(Composition.Idpg)]
    public void Every_variant_matches_the_pytorch_reference(Composition composition)
    {
        AdapterConfig c = Config(composition);
        LopaAdapter adapter = Random(c, 7);
        string dir = TempDir.Create();
        adapter.SaveDirectory(dir);
        int batch = composition == Composition.PromptTuning ? 1 : 11; // crosses the 8-instance chunk boundary
        float[] x = Rand.Floats(new Random(3), batch * c.EncoderDim, 2f);
        string xFile = Path.Combine(dir, "x.bin");
        File.WriteAllBytes(xFile, x.SelectMany(BitConverter.GetBytes).ToArray());
        string[] lines = PyTorch.Run(Reference, dir, xFile).Trim().Split('\n');
        float[] z = new SoftPromptGenerator(LopaAdapter.Load(dir)).Generate(x, batch);
        int md = c.NumVirtualTokens * c.TokenDim;
        Assert.Equal(batch, lines.Length);
        for (int b = 0; b < batch; b++)
        {
            double[] expected = lines[b].Split(' ').Select(s => double.Parse(s,
                CultureInfo.InvariantCulture)).ToArray();
            for (int i = 0; i < md; i++)
            {
                Assert.True(Math.Abs(expected[i] - z[b * md + i]) <= 1e-5,
                    $"{composition} instance {b} element {i}: {expected[i]} vs {z[b * md + i]}");
            }
        }
    }

    [Fact]
    public void An_instance_gets_the_same_bytes_alone_or_in_any_batch()
    {
        AdapterConfig c = Config(Composition.Lopa, d: 288, h: 512);
        var gen = new SoftPromptGenerator(Random(c, 5));
        float[] x = Rand.Floats(new Random(1), 20 * c.EncoderDim);
        float[] all = gen.Generate(x, 20);
        int md = c.NumVirtualTokens * c.TokenDim;
        var workspace = gen.NewWorkspace();
        var one = new float[md];
        for (int b = 0; b < 20; b++)
        {
            gen.Generate(x.AsSpan(b * c.EncoderDim, c.EncoderDim), 1, one, workspace);
            Assert.True(one.AsSpan().SequenceEqual(all.AsSpan(b * md, md)),
                $"instance {b} differs between batch 1 and batch 20");
        }
    }

    [Fact]
    public void At_initialisation_z_is_about_half_of_z_s()
    {
        // Paper: heads ~ N(0, 0.02) with zero output biases make u·vᵀ ≈ 0, so σ ≈ 0.5 and Z ≈ 0.5·Z_S.
        AdapterConfig c = Config(Composition.Lopa, d: 128, h: 512) with { HiddenSize = 256 };
        var adapter = LopaAdapter.CreateRandom(c, 11);
        float[] z = new SoftPromptGenerator(adapter).Generate(Rand.Floats(new Random(2), c.EncoderDim), 1);
        for (int i = 0; i < z.Length; i++)
        {
            float zs = adapter.PromptEmbeddings![i];
            if (MathF.Abs(zs) > 1e-3f) Assert.InRange(z[i] / zs, 0.48f, 0.52f);
        }
    }
}
