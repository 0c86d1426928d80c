using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Core.Generation;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Proxy.Inspection;
using LoPAProxy.Proxy.Tests.Limits;
using LoPAProxy.Proxy.Tests.Store;

namespace LoPAProxy.Proxy.Tests.Inspection;

/// <summary>The numbers behind the console's pictures, against the generator and PyTorch.</summary>
public class SoftPromptInspectionTests
{
    private static float[][] Rows(JsonElement e) =>
        e.EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();

    [Fact]
    public async Task Z_the_gate_and_the_offsets_are_the_generators_own()
    {
        await using StoreRig stack = await StoreRig.StartAsync(RateLimitHttpTests.Sqlite());
        string key = await stack.NewTenantAsync("acme");
        LopaAdapter adapter = StoreRig.Adapter(5);
        using HttpClient c = stack.Client(key);
        Assert.Equal(201, (int)(await c.PostAsync("/v1/adapters", StoreRig.Upload("story", "1", adapter)))
            .StatusCode);
        const string Text = "Tom had a red kite";
        string[] texts = ["a gorgeous movie", "a dull movie", "the actors were wonderful", "far too long"];
        using HttpResponseMessage r = await c.PostAsJsonAsync("/v1/adapters/story@1/soft-prompt",
            new { text = Text, texts });
        string body = await r.Content.ReadAsStringAsync();
        Assert.True(r.IsSuccessStatusCode, body);
        JsonElement view = JsonDocument.Parse(body).RootElement;
        Assert.Equal("lopa", view.GetProperty("method").GetString());
        Assert.Equal(4, view.GetProperty("m").GetInt32());
        Assert.Equal(64, view.GetProperty("d").GetInt32());

        // The reference: the same encoder and generator, run here.
        IInstanceEncoder encoder = EncoderFactory.Create("fm-mean", new EncoderOptions
        {
            FoundationModel = SharedFiles.Path_("models", "stories260K", "stories260K.bin"),
        });
        var x = new float[encoder.Dim];
        encoder.Encode([Text], x);
        float[] z = new SoftPromptGenerator(adapter).Generate(x, 1);
        float[] zs = adapter.PromptEmbeddings!;
        float[][] servedZ = Rows(view.GetProperty("instance").GetProperty("z"));
        float[][] gate = Rows(view.GetProperty("instance").GetProperty("gate"));
        float[][] servedZs = Rows(view.GetProperty("prompt_embeddings"));
        double[] norms = view.GetProperty("instance").GetProperty("row_norms").EnumerateArray()
            .Select(v => v.GetDouble()).ToArray();
        double[] offsets = view.GetProperty("instance").GetProperty("offset_row_norms").EnumerateArray()
            .Select(v => v.GetDouble()).ToArray();
        for (int i = 0; i < 4; i++)
        {
            double norm = 0, offset = 0;
            for (int j = 0; j < 64; j++)
            {
                float expected = z[i * 64 + j];
                Assert.Equal(expected, servedZ[i][j]); // bit for bit: what the proxy sends
                Assert.Equal(zs[i * 64 + j], servedZs[i][j]);
                Assert.InRange(gate[i][j], 0f, 1f);
                Assert.Equal(expected, zs[i * 64 + j] * gate[i][j], 1e-6f); // Z = Z_S ∘ σ(u·vᵀ)
                norm += (double)expected * expected;
                double away = expected - 0.5 * zs[i * 64 + j];
                offset += away * away;
            }
            Assert.Equal(Math.Sqrt(norm), norms[i], 5);
            Assert.Equal(Math.Sqrt(offset), offsets[i], 5);
        }
        JsonElement projection = view.GetProperty("projection");
        Assert.Equal(4, projection.GetProperty("x").GetArrayLength());
        double[] explained = projection.GetProperty("explained").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.True(explained[0] >= explained[1] && explained[0] + explained[1] <= 1 + 1e-9);

        using HttpResponseMessage missing = await c.PostAsJsonAsync("/v1/adapters/nope/soft-prompt",
            new { text = "x" });
        Assert.Equal(404, (int)missing.StatusCode);
        using HttpResponseMessage empty = await c.PostAsJsonAsync("/v1/adapters/story/soft-prompt", new { });
        Assert.Equal(400, (int)empty.StatusCode);
        using HttpResponseMessage many = await c.PostAsJsonAsync("/v1/adapters/story/soft-prompt",
            new { texts = Enumerable.Repeat("x", SoftPromptInspector.MaxTexts + 1) });
        Hardening.HardeningFixture.IsError(await many.Content.ReadAsStringAsync(), "too_many_prompts");
        // #22 item 9: the encoder's work is bounded before it starts — by the tokens it would read, texts cut first.
        string longText = string.Concat(Enumerable.Repeat("a gorgeous, witty, seductive movie. ", 110));
        using HttpResponseMessage heavy = await c.PostAsJsonAsync("/v1/adapters/story/soft-prompt",
            new { texts = Enumerable.Repeat(longText, 200) });
        string heavyText = await heavy.Content.ReadAsStringAsync();
        Assert.Equal(400, (int)heavy.StatusCode);
        Assert.Contains($"may have it read {SoftPromptInspector.MaxEncoderTokens}",
            Hardening.HardeningFixture.IsError(heavyText, "request_too_large").GetProperty("message").GetString());

        // It is the tenant's encoder's work: the tenant's request limit applies.
        await RateLimitHttpTests.SetLimitsAsync(stack, "acme", new { requests_per_minute = 1 });
        var one = new { text = "x" };
        using HttpResponseMessage first = await c.PostAsJsonAsync("/v1/adapters/story/soft-prompt", one);
        using HttpResponseMessage second = await c.PostAsJsonAsync("/v1/adapters/story/soft-prompt", one);
        Assert.Equal(200, (int)first.StatusCode);
        Assert.Equal(429, (int)second.StatusCode);
        Assert.True(second.Headers.Contains("retry-after"));
    }

    [Fact]
    public void The_projection_equals_pytorchs_principal_components()
    {
        const int n = 12, length = 40;
        var random = new Random(3);
        float[] rows = Enumerable.Range(0, n * length).Select(i => (float)(random.NextDouble() * 2 - 1
            + (i / length < 6 ? 1.5 : -1.5) * (i % length < 5 ? 1 : 0))).ToArray();
        ProjectionResult mine = Projection.Of(rows, n, length);
        string file = Path.Combine(TempDir.Create(), "rows.txt");
        File.WriteAllText(file, string.Join(" ", rows.Select(v => v.ToString("R", CultureInfo.InvariantCulture))));
        string output = PyTorch.Run("""
            import sys, torch
            v = [float(t) for t in open(sys.argv[1]).read().split()]
            x = torch.tensor(v, dtype=torch.float64).reshape(int(sys.argv[2]), int(sys.argv[3]))
            xc = x - x.mean(dim=0)
            u, s, _ = torch.linalg.svd(xc, full_matrices=False)
            scores = u[:, :2] * s[:2]
            explained = (s[:2] ** 2) / (s ** 2).sum()
            print(" ".join(repr(float(t)) for t in scores[:, 0]))
            print(" ".join(repr(float(t)) for t in scores[:, 1]))
            print(" ".join(repr(float(t)) for t in explained))
            """, file, n.ToString(CultureInfo.InvariantCulture), length.ToString(CultureInfo.InvariantCulture));
        double[][] torch = output.Trim().Split('\n').Select(l => l.Split(' ')
            .Select(t => double.Parse(t, CultureInfo.InvariantCulture)).ToArray()).ToArray();
        foreach (var (ours, theirs) in new[] { (mine.X, torch[0]), (mine.Y, torch[1]) })
        {
            double sign = Math.Sign(ours.Zip(theirs, (a, b) => a * b).Sum()); // components are defined up to sign
            // Through the Gram matrix the scores carry ~1e-8 relative rounding; SVD does not square the condition.
            for (int i = 0; i < n; i++) Assert.Equal(theirs[i], sign * ours[i], 6);
        }
        Assert.Equal(torch[2][0], mine.Explained[0], 9);
        Assert.Equal(torch[2][1], mine.Explained[1], 9);
    }
}
