using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using LoPAProxy.Core.Adapters;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.ModelServer;
using Microsoft.AspNetCore.Builder;
using Npgsql;

namespace LoPAProxy.Cli.Tests;

/// <summary>
/// Two `lopa proxy` processes on one PostgreSQL database: a change through one reaches the other's cache, and one
/// tenant's limits hold across both.
/// </summary>
public class ReplicaTests
{
    private const string AdminKey = "replica-admin-key-0123456789";

    /// <summary>A model server, a scratch database and two proxy processes in front of them.</summary>
    private sealed class Replicas : IAsyncDisposable
    {
        private readonly string _server = Environment.GetEnvironmentVariable("LOPA_TEST_PG")
            ?? throw new InvalidOperationException("LOPA_TEST_PG is not set: run scripts/test.sh");
        private readonly string _db = "lopa_procs_" + Guid.NewGuid().ToString("N");
        private readonly List<LopaProcess> _procs = new();
        private WebApplication _model = null!;

        public List<string> Urls { get; } = new();

        public static async Task<Replicas> StartAsync()
        {
            var r = new Replicas();
            await using (var admin = new NpgsqlConnection(r._server))
            {
                await admin.OpenAsync();
                await new NpgsqlCommand($"CREATE DATABASE {r._db}", admin).ExecuteNonQueryAsync();
            }
            r._model = ModelServerApp.Build(new ModelServerOptions
            {
                ModelPath = SharedFiles.Path_("models", "stories260K", "stories260K.bin"), Port = 0,
            });
            await r._model.StartAsync();
            string dir = TempDir.Create(), config = Path.Combine(dir, "proxy.json");
            string conn = new NpgsqlConnectionStringBuilder(r._server) { Database = r._db }.ToString();
            string fm = SharedFiles.Path_("models", "stories260K", "stories260K.bin");
            string model = r._model.Urls.First();
            File.WriteAllText(config, $$"""
                {
                  "ReverseProxy": {
                    "Routes": { "chat": { "ClusterId": "chat", "Match": { "Path": "/v1/chat/completions" } } },
                    "Clusters": { "chat": { "Destinations": { "d": { "Address": "{{model}}" } } } } },
                  "LoPA": {
                    "Clusters": { "chat": { "Dialect": "vllm-chat", "Model": "stories260K", "HiddenSize": 64 } },
                    "Encoders": [ "fm-mean" ], "EncoderFiles": { "FoundationModel": "{{fm}}" },
                    "Store": { "Kind": "postgres", "ConnectionString": "{{conn}}" }, "AdminKey": "{{AdminKey}}" }
                }
                """);
            for (int i = 0; i < 2; i++)
            {
                var p = new LopaProcess("proxy", "--config", config, "--urls", "http://127.0.0.1:0");
                r._procs.Add(p);
                const string Listening = "proxy listening on ";
                r.Urls.Add(p.WaitForLine(l => l.StartsWith(Listening, StringComparison.Ordinal))[Listening.Length..]
                    .Trim());
            }
            return r;
        }

        public string Logs() => string.Join("\n", _procs.Select(p => p.Stdout + "\n" + p.Stderr));

        public HttpClient Client(int replica, string key)
        {
            var c = new HttpClient { BaseAddress = new Uri(Urls[replica]) };
            c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            return c;
        }

        /// <summary>Creates tenant acme through replica 0; returns a key.</summary>
        public async Task<string> NewTenantAsync()
        {
            using HttpClient admin = Client(0, AdminKey);
            Assert.True((await admin.PostAsJsonAsync("/admin/tenants", new { name = "acme" })).IsSuccessStatusCode);
            using HttpResponseMessage issued = await admin.PostAsync("/admin/tenants/acme/keys", null);
            return JsonDocument.Parse(await issued.Content.ReadAsStringAsync()).RootElement.GetProperty("key")
                .GetString()!;
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var p in _procs)
            {
                p.Terminate();
                p.WaitForExit(30);
                p.Dispose();
            }
            await _model.StopAsync();
            NpgsqlConnection.ClearAllPools();
            await using var admin = new NpgsqlConnection(_server);
            await admin.OpenAsync();
            await new NpgsqlCommand($"DROP DATABASE IF EXISTS {_db} WITH (FORCE)", admin).ExecuteNonQueryAsync();
        }
    }

    private static object Chat(string model) => new
    {
        model, messages = new[] { new { role = "user", content = "Tom had a red kite" } }, max_tokens = 8,
        temperature = 0,
    };

    [Fact]
    public async Task An_activation_through_one_proxy_process_is_served_by_the_other_promptly()
    {
        await using Replicas replicas = await Replicas.StartAsync();
        string key = await replicas.NewTenantAsync();
        using var one = replicas.Client(0, key);
        using var two = replicas.Client(1, key);
        foreach (var (version, seed, activate) in new[] { ("1", 1, "true"), ("2", 2, "false") })
        {
            var a = LopaAdapter.CreateRandom(new AdapterConfig
            {
                NumVirtualTokens = 4, TokenDim = 64, Rank = 2,
                HiddenSize = 16, Encoder = "fm-mean", EncoderDim = 64
            }, seed);
            var form = new MultipartFormDataContent { { new StringContent("story"), "name" },
                { new StringContent(version), "version" }, { new StringContent(activate), "activate" },
                { new ByteArrayContent(a.ToSingleFile()), "f", "a.safetensors" } };
            Assert.Equal(201, (int)(await one.PostAsync("/v1/adapters", form)).StatusCode);
        }
        async Task<string> Answer(HttpClient c, string m) => JsonDocument.Parse(await (await c.PostAsJsonAsync(
                "/v1/chat/completions", Chat(m))).Content.ReadAsStringAsync())
            .RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        string v1 = await Answer(two, "stories260K:story"), v2 = await Answer(two, "stories260K:story@2");
        Assert.NotEqual(v1, v2); // process two caches both
        Assert.True((await one.PostAsJsonAsync("/v1/adapters/story/activate", new { version = "2" }))
            .IsSuccessStatusCode);
        var deadline = DateTime.UtcNow.AddSeconds(5);
        string now = v1;
        while (now != v2 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
            now = await Answer(two, "stories260K:story");
        }
        Assert.Equal(v2, now);
    }

    [Fact]
    public async Task Two_proxy_processes_share_one_tenants_limit_exactly()
    {
        await using Replicas replicas = await Replicas.StartAsync();
        string key = await replicas.NewTenantAsync();
        using (HttpClient admin = replicas.Client(1, AdminKey))
        {
            Assert.True((await admin.PutAsJsonAsync("/admin/tenants/acme/limits", new { requests_per_minute = 10 }))
                .IsSuccessStatusCode);
        }

        using HttpClient one = replicas.Client(0, key), two = replicas.Client(1, key);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        HttpResponseMessage[] answers = await Task.WhenAll(Enumerable.Range(0, 64).Select(i =>
            (i % 2 == 0 ? one : two).PostAsJsonAsync("/v1/chat/completions", Chat("stories260K"))));
        double seconds = clock.Elapsed.TotalSeconds;
        int[] statuses = answers.Select(a => (int)a.StatusCode).ToArray();
        foreach (HttpResponseMessage a in answers) a.Dispose();
        // Real clocks here: a burst that outlasts the 6 s refill interval may rightly admit one more per interval
        // (the in-process tests freeze the clock and demand exactly 10). Per-process limits would admit 20.
        int allowed = 10 + (int)(seconds / 6);
        int admitted = statuses.Count(s => s == 200);
        Assert.True(admitted >= 10 && admitted <= allowed, $"{admitted} admitted in {seconds:F1} s\n{replicas.Logs()}");
        Assert.Equal(64 - admitted, statuses.Count(s => s == 429));
        // Both processes refused some: the limit is one limit, not ten per process.
        Assert.Contains(429, statuses.Where((_, i) => i % 2 == 0));
        Assert.Contains(429, statuses.Where((_, i) => i % 2 == 1));
    }
}
