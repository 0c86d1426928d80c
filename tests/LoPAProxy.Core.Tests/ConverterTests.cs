using System.Globalization;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Generation;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Core.Tests;

public class ConverterTests
{
    [Theory]
    [InlineData("lopa")]
    [InlineData("idpg")]
    public void Reference_checkpoints_convert_and_generate_what_the_reference_module_computes(string kind)
    {
        // The reference code's modules, saved as it saves them: torch.save(state_dict) for the generator (with
        // the frozen encoder under base.* and an 'enc.' prefix) and PEFT's adapter_model.bin for Z_S.
        string dir = TempDir.Create();
        string output = PyTorch.Run("""
            import sys, os, torch
            torch.manual_seed(0)
            d, kind = sys.argv[1], sys.argv[2]
            m, dim, h, H, r = 10, 32, 24, 16, 2
            class Gen(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.base = torch.nn.Linear(5, h)            # stands in for the frozen encoder
                    if kind == 'lopa':
                        self.row_dense, self.row_out_proj = torch.nn.Linear(h, H), torch.nn.Linear(H, m * r)
                        self.col_dense, self.col_out_proj = torch.nn.Linear(h, H), torch.nn.Linear(H, dim * r)
                    else:
                        self.layer_down_project, self.layer_up_project = torch.nn.Linear(h, H), torch.nn.Linear(H, m * dim)
                def forward(self, x):
                    if kind == 'lopa':
                        u = self.row_out_proj(torch.tanh(self.row_dense(x))).view(-1, m, r)
                        v = self.col_out_proj(torch.tanh(self.col_dense(x))).view(-1, dim, r)
                        return torch.einsum('bir,bjr->bij', u, v)
                    return self.layer_up_project(torch.tanh(self.layer_down_project(x))).view(-1, m, dim)
            class Outer(torch.nn.Module):
                def __init__(self): super().__init__(); self.enc = Gen()
            outer = Outer()
            torch.save(outer.state_dict(), os.path.join(d, 'lopa_enc.pt'))
            zs = torch.randn(m, dim)
            if kind == 'lopa': torch.save({'prompt_embeddings': zs}, os.path.join(d, 'adapter_model.bin'))
            x = torch.randn(3, h)
            with torch.no_grad():
                zi = outer.enc(x)
                z = zs * torch.sigmoid(zi) if kind == 'lopa' else zi
            open(os.path.join(d, 'x.txt'), 'w').write(' '.join(repr(float(t)) for t in x.flatten()))
            for row in z.reshape(3, -1): print(' '.join(repr(float(t)) for t in row))
            """, dir, kind);
        LopaAdapter a = ReferenceCheckpointConverter.Convert(kind == "lopa" ? Path.Combine(dir,
            "adapter_model.bin") : null,
            Path.Combine(dir, "lopa_enc.pt"), "minilm", "stories260K", numVirtualTokens: kind == "idpg" ? 10 : null);
        Assert.Equal(kind == "lopa" ? Composition.Lopa : Composition.Idpg, a.Config.Composition);
        Assert.Equal((10, 32, 24, 16), (a.Config.NumVirtualTokens, a.Config.TokenDim, a.Config.EncoderDim,
            a.Config.HiddenSize));
        float[] x = File.ReadAllText(Path.Combine(dir, "x.txt")).Split(' ').Select(s => float.Parse(s,
            CultureInfo.InvariantCulture)).ToArray();
        float[] z = new SoftPromptGenerator(a).Generate(x, 3);
        string[] lines = output.Trim().Split('\n');
        for (int b = 0; b < 3; b++)
        {
            Rand.AssertClose(lines[b].Split(' ').Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray(),
                z.AsSpan(b * 320, 320), 1e-5f, $"instance {b}");
        }
        // The converted adapter survives a save/load round trip.
        string saved = TempDir.Create();
        a.SaveDirectory(saved);
        Assert.Equal(z, new SoftPromptGenerator(LopaAdapter.Load(saved)).Generate(x, 3));
    }

    [Fact]
    public void Hostile_reference_checkpoints_are_refused()
    {
        string dir = TempDir.Create();
        PyTorch.Run("""
            import sys, os, torch
            torch.save({'prompt_embeddings': torch.zeros(4, 8)}, os.path.join(sys.argv[1], 'ok.bin'))
            class Evil:
                def __reduce__(self): return (os.system, ('echo pwned',))
            torch.save({'prompt_embeddings': Evil()}, os.path.join(sys.argv[1], 'evil.bin'))
            """, dir);
        Assert.Contains("disallowed global", Assert.Throws<AdapterException>(() =>
            ReferenceCheckpointConverter.Convert(Path.Combine(dir, "evil.bin"), null, null, null)).Message);
        LopaAdapter pt = ReferenceCheckpointConverter.Convert(Path.Combine(dir, "ok.bin"), null, null, null);
        Assert.Equal(Composition.PromptTuning, pt.Config.Composition);
        Assert.Throws<AdapterException>(() => ReferenceCheckpointConverter.Convert(null, null, null, null));
    }
}
