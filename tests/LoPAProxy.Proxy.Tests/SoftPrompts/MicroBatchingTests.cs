using System.Collections.Concurrent;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Core.Generation;
using LoPAProxy.Engine.Formats.Torch;
using LoPAProxy.Proxy.SoftPrompts;
using LoPAProxy.Proxy.Tests.Hardening;
using Microsoft.Extensions.DependencyInjection;

namespace LoPAProxy.Proxy.Tests.SoftPrompts;

/// <summary>Instances of concurrent requests are encoded together, and no request's soft prompt notices.</summary>
public class MicroBatchingTests(HardeningFixture f) : IClassFixture<HardeningFixture>
{
    private static readonly Lazy<IInstanceEncoder> MiniLm = new(() => EncoderFactory.Create("minilm",
        new EncoderOptions()));

    [Fact]
    public async Task Under_64_concurrent_requests_every_soft_prompt_equals_the_one_computed_alone()
    {
        f.Backend.Clear();
        InstanceVectors vectors = f.Proxy.Services.GetRequiredService<InstanceVectors>();
        long batchesBefore = vectors.BatchStatistics.GetValueOrDefault("minilm").Batches;
        string[] texts = File.ReadLines(Engine.Tests.Support.SharedFiles.Path_("data", "glue", "SST-2", "dev.tsv"))
            .Skip(300).Take(64).Select(l => l.Split('\t')[0]).ToArray();
        var statuses = await Task.WhenAll(texts.Select(t => f.PostAsync(HardeningFixture.AcmeKey,
            "/v1/chat/completions",
            HardeningFixture.Chat("stories260K:mini", t))));
        Assert.All(statuses, s => Assert.True(s.Status == 200, s.Text));
        var (batches, instances) = vectors.BatchStatistics["minilm"];
        Assert.True(instances > batches - batchesBefore, $"no batching happened: {batches - batchesBefore} runs");

        var generator = new SoftPromptGenerator(LopaAdapter.Load(Path.Combine(f.AdaptersDir, "acme", "mini")));
        var byText = new ConcurrentDictionary<string, float[]>();
        foreach (Received got in f.Backend.Requests)
        {
            JsonElement content = got.Json.GetProperty("messages")[0].GetProperty("content");
            byte[] data = Convert.FromBase64String(content[0].GetProperty("data").GetString()!);
            byText[content[1].GetProperty("text").GetString()!] = TorchFile.LoadTensor(data, "z").Values.ToArray();
        }
        Assert.Equal(texts.Distinct().Count(), byText.Count);
        double worst = 0;
        foreach (string text in texts.Distinct())
        {
            float[] alone = ZAlone(generator, text);
            float[] served = byText[text];
            worst = Math.Max(worst, alone.Zip(served, (a, b) => (double)Math.Abs(a - b)).Max());
        }
        Assert.True(worst <= 1e-5, $"max |Z served − Z alone| = {worst:E2}");
    }

    [Fact]
    public async Task A_repeated_instance_costs_no_encoder_work_and_gets_the_same_bytes()
    {
        f.Backend.Clear();
        InstanceVectors vectors = f.Proxy.Services.GetRequiredService<InstanceVectors>();
        string text = "A repeated instance " + Guid.NewGuid().ToString("N");
        for (int i = 0; i < 3; i++)
        {
            var (status, body) = await f.PostAsync(HardeningFixture.AcmeKey, "/v1/chat/completions",
                HardeningFixture.Chat("stories260K:mini", text));
            Assert.True(status == 200, body);
        }
        long hits = vectors.Cache!.Statistics.Hits;
        string[] data = f.Backend.Requests.Select(r => r.Json.GetProperty("messages")[0].GetProperty("content")[0]
            .GetProperty("data").GetString()!).ToArray();
        Assert.Equal(3, data.Length);
        Assert.Single(data.Distinct());
        Assert.True(hits >= 2);
    }

    private static float[] ZAlone(SoftPromptGenerator generator, string text)
    {
        var x = new float[384];
        MiniLm.Value.Encode([InstanceText.Bound(text, MiniLm.Value.MaxTokens)], x);
        var z = new float[generator.Rows * generator.TokenDim];
        generator.Generate(x, 1, z, generator.NewWorkspace());
        return z;
    }
}
