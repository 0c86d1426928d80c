using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.ModelServer;
using Npgsql;

namespace LoPAProxy.Cli.Tests;

/// <summary>Two `lopa proxy` processes on one PostgreSQL database: a change through one reaches the other's cache.</summary>
public class ReplicaTests
{
    [Fact]
    public async Task An_activation_through_one_proxy_process_is_served_by_the_other_promptly()
    {
        string server = Environment.GetEnvironmentVariable("LOPA_TEST_PG") ?? throw new InvalidOperationException("LOPA_TEST_PG is not set: run scripts/test.sh");
        string db = "lopa_procs_" + Guid.NewGuid().ToString("N");
        await using (var admin = new NpgsqlConnection(server)) { await admin.OpenAsync(); await new NpgsqlCommand($"CREATE DATABASE {db}", admin).ExecuteNonQueryAsync(); }
        var model = ModelServerApp.Build(new ModelServerOptions { ModelPath = SharedFiles.Path_("models", "stories260K", "stories260K.bin"), Port = 0 });
        await model.StartAsync();
        var procs = new List<LopaProcess>();
        try
        {
            string dir = TempDir.Create(), config = Path.Combine(dir, "proxy.json");
            string conn = new NpgsqlConnectionStringBuilder(server) { Database = db }.ToString();
            File.WriteAllText(config, $$"""
                {
                  "ReverseProxy": { "Routes": { "chat": { "ClusterId": "chat", "Match": { "Path": "/v1/chat/completions" } } },
                                    "Clusters": { "chat": { "Destinations": { "d": { "Address": "{{model.Urls.First()}}" } } } } },
                  "LoPA": { "Clusters": { "chat": { "Dialect": "vllm-chat", "Model": "stories260K", "HiddenSize": 64 } },
                            "Encoders": [ "fm-mean" ], "EncoderFiles": { "FoundationModel": "{{SharedFiles.Path_("models", "stories260K", "stories260K.bin")}}" },
                            "Store": { "Kind": "postgres", "ConnectionString": "{{conn}}" }, "AdminKey": "replica-admin-key-0123456789" }
                }
                """);
            var urls = new List<string>();
            for (int i = 0; i < 2; i++)
            {
                var p = new LopaProcess("proxy", "--config", config, "--urls", "http://127.0.0.1:0");
                procs.Add(p);
                urls.Add(p.WaitForLine(l => l.StartsWith("proxy listening on ", StringComparison.Ordinal))["proxy listening on ".Length..].Trim());
            }
            HttpClient Client(int i, string key) { var c = new HttpClient { BaseAddress = new Uri(urls[i]) }; c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key); return c; }
            using var admin0 = Client(0, "replica-admin-key-0123456789");
            Assert.True((await admin0.PostAsJsonAsync("/admin/tenants", new { name = "acme" })).IsSuccessStatusCode);
            string key = JsonDocument.Parse(await (await admin0.PostAsync("/admin/tenants/acme/keys", null)).Content.ReadAsStringAsync()).RootElement.GetProperty("key").GetString()!;
            using var one = Client(0, key);
            using var two = Client(1, key);
            foreach (var (version, seed, activate) in new[] { ("1", 1, "true"), ("2", 2, "false") })
            {
                var a = LopaAdapter.CreateRandom(new AdapterConfig { NumVirtualTokens = 4, TokenDim = 64, Rank = 2, HiddenSize = 16, Encoder = "fm-mean", EncoderDim = 64 }, seed);
                var form = new MultipartFormDataContent { { new StringContent("story"), "name" }, { new StringContent(version), "version" }, { new StringContent(activate), "activate" }, { new ByteArrayContent(a.ToSingleFile()), "f", "a.safetensors" } };
                Assert.Equal(201, (int)(await one.PostAsync("/v1/adapters", form)).StatusCode);
            }
            async Task<string> Answer(HttpClient c, string m) => JsonDocument.Parse(await (await c.PostAsJsonAsync("/v1/chat/completions",
                new { model = m, messages = new[] { new { role = "user", content = "Tom had a red kite" } }, max_tokens = 8, temperature = 0 })).Content.ReadAsStringAsync())
                .RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
            string v1 = await Answer(two, "stories260K:story"), v2 = await Answer(two, "stories260K:story@2"); // process two caches both
            Assert.NotEqual(v1, v2);
            Assert.True((await one.PostAsJsonAsync("/v1/adapters/story/activate", new { version = "2" })).IsSuccessStatusCode);
            var deadline = DateTime.UtcNow.AddSeconds(5);
            string now = v1;
            while (now != v2 && DateTime.UtcNow < deadline) { await Task.Delay(50); now = await Answer(two, "stories260K:story"); }
            Assert.Equal(v2, now);
        }
        finally
        {
            foreach (var p in procs) { p.Terminate(); p.WaitForExit(30); p.Dispose(); }
            await model.StopAsync();
            NpgsqlConnection.ClearAllPools();
            await using var admin = new NpgsqlConnection(server);
            await admin.OpenAsync();
            await new NpgsqlCommand($"DROP DATABASE IF EXISTS {db} WITH (FORCE)", admin).ExecuteNonQueryAsync();
        }
    }
}
