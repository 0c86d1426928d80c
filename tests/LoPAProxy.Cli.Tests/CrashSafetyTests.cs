using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Proxy.Store;

namespace LoPAProxy.Cli.Tests;

/// <summary>kill -9 a real proxy process in the middle of uploads; after a restart the store holds only complete
/// adapters.</summary>
public class CrashSafetyTests
{
    private const string AdminKey = "crash-admin-key-0123456789";

    private static string Config(string dir) =>
        $$"""
        {
          "ReverseProxy": { "Routes": { "chat": { "ClusterId": "chat", "Match": { "Path": "/v1/chat/completions" } } },
                            "Clusters": { "chat": { "Destinations": { "d": { "Address": "http://127.0.0.1:9/" } } } } },
          "LoPA": { "Clusters": { "chat": { "Dialect": "vllm-chat", "Model": "m", "HiddenSize": 64 } },
                    "EncoderFiles": { "FoundationModel": "{{SharedFiles.Path_("models", "stories260K", "stories260K.bin")}}" },
                    "Store": { "Kind": "sqlite", "Path": "{{Path.Combine(dir, "lopa.db")}}" },
                    "AdminKey": "{{AdminKey}}", "Quotas": { "MaxAdaptersPerTenant": 100000, "MaxBytesPerTenant": 100000000000 } }
        }
        """;

    private static (LopaProcess Process, string Url) Start(string config)
    {
        var p = new LopaProcess("proxy", "--config", config, "--urls", "http://127.0.0.1:0");
        string line = p.WaitForLine(l => l.StartsWith("proxy listening on ", StringComparison.Ordinal));
        return (p, line["proxy listening on ".Length..].Trim());
    }

    [Fact]
    public async Task After_kill_9_mid_upload_the_store_holds_only_complete_adapters_and_the_cli_manages_them()
    {
        string dir = TempDir.Create(), config = Path.Combine(dir, "proxy.json");
        File.WriteAllText(config, Config(dir));
        var (proxy, url) = Start(config);
        string key;
        using (var admin = new HttpClient { BaseAddress = new Uri(url) })
        {
            admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
            Assert.True((await admin.PostAsJsonAsync("/admin/tenants", new { name = "acme" })).IsSuccessStatusCode);
            key = JsonDocument.Parse(await (await admin.PostAsync("/admin/tenants/acme/keys",
                null)).Content.ReadAsStringAsync()).RootElement.GetProperty("key").GetString()!;
        }
        // ~1.5 MB adapters, uploaded by 8 writers until the process dies under them.
        var adapter = LopaAdapter.CreateRandom(new AdapterConfig
        {
            NumVirtualTokens = 10, TokenDim = 64, Rank = 4,
            HiddenSize = 2048, Encoder = "fm-mean", EncoderDim = 64
        }, 1);
        byte[] file = adapter.ToSingleFile();
        int succeeded = 0;
        using var cts = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            using var c = new HttpClient { BaseAddress = new Uri(url) };
            c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            for (int i = 0; !cts.IsCancellationRequested; i++)
            {
                var form = new MultipartFormDataContent { { new StringContent($"w{w}"), "name" },
                    { new StringContent($"{i}"), "version" }, { new ByteArrayContent(file), "f", "a.safetensors" } };
                try
                {
                    if ((await c.PostAsync("/v1/adapters", form,
                    cts.Token)).IsSuccessStatusCode)
                    {
                        Interlocked.Increment(ref succeeded);
                    }
                }
                catch (Exception) { return; } // the process died under us
            }
        })).ToArray();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (Volatile.Read(ref succeeded) < 10 && DateTime.UtcNow < deadline) await Task.Delay(20);
        proxy.Kill9();
        cts.Cancel();
        await Task.WhenAll(writers);
        proxy.Dispose();
        Assert.True(succeeded >= 10, $"only {succeeded} uploads finished before the kill");

        // Restart on the same database, then check every stored version directly.
        var (restarted, url2) = Start(config);
        using (restarted)
        {
            await using (var store = new SqliteTenancyStore(Path.Combine(dir, "lopa.db")))
            {
                var versions = await store.ListAdaptersAsync("acme");
                Assert.True(versions.Count >= succeeded,
                    $"{versions.Count} stored, {succeeded} acknowledged"); // nothing acknowledged was lost
                foreach (AdapterVersionInfo v in versions)
                {
                    StoredAdapter a = (await store.GetAdapterAsync("acme", v.Name, v.Version))!;
                    Assert.Equal(v.Sha256, Convert.ToHexString(SHA256.HashData(a.Weights)).ToLowerInvariant());
                    Assert.Equal(file.Length, a.Weights.Length);
                    LopaAdapter.FromParts(a.ConfigJson, a.Weights, v.Version); // loads: complete and valid
                }
                // Every name has exactly one active version and it exists (no orphan rows).
                foreach (var name in versions.GroupBy(v => v.Name)) Assert.Single(name, v => v.Active);
            }

            // The CLI against the restarted proxy.
            string adapterDir = Path.Combine(dir, "cli-adapter");
            LopaAdapter.CreateRandom(new AdapterConfig
            {
                NumVirtualTokens = 4, TokenDim = 64, Rank = 2,
                HiddenSize = 16, Encoder = "fm-mean", EncoderDim = 64
            }, 2).SaveDirectory(adapterDir);
            string[] common = { "--url", url2, "--key", key };
            using (var up = new LopaProcess(new[] { "adapter", "upload", adapterDir, "--name", "cli", "--version",
                "1" }.Concat(common).ToArray()))
            {
                Assert.True(up.WaitForExit() == 0, up.Stderr);
            }

            using (var up2 = new LopaProcess(new[] { "adapter", "upload", adapterDir, "--name", "cli", "--version",
                "2", "--no-activate" }.Concat(common).ToArray()))
            {
                Assert.Equal(0, up2.WaitForExit());
            }

            using (var dup = new LopaProcess(new[] { "adapter", "upload", adapterDir, "--name", "cli", "--version",
                "1" }.Concat(common).ToArray()))
            {
                Assert.Equal(1, dup.WaitForExit());
                Assert.Contains("409", dup.Stderr);
            }
            using (var act = new LopaProcess(new[] { "adapter", "activate", "cli",
                "2" }.Concat(common).ToArray()))
            {
                Assert.Equal(0, act.WaitForExit());
            }

            using (var list = new LopaProcess(new[] { "adapter", "list", "--json" }.Concat(common).ToArray()))
            {
                Assert.Equal(0, list.WaitForExit());
                var cli = JsonDocument.Parse(list.Stdout).RootElement.GetProperty("data").EnumerateArray().Where(a =>
                    a.GetProperty("name").GetString() == "cli").ToList();
                Assert.Equal(new[] { ("1", false), ("2", true) }, cli.Select(a =>
                    (a.GetProperty("version").GetString()!, a.GetProperty("active").GetBoolean())));
            }
            using (var del = new LopaProcess(new[] { "adapter", "delete",
                "cli" }.Concat(common).ToArray()))
            {
                Assert.Equal(0, del.WaitForExit());
            }

            using (var gone = new LopaProcess(new[] { "adapter", "delete",
                "cli" }.Concat(common).ToArray()))
            {
                Assert.Equal(1, gone.WaitForExit());
            }

            restarted.Terminate();
            restarted.WaitForExit(30);
        }
    }
}
