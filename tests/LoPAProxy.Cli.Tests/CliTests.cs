using System.Globalization;
using System.Text.Json;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Cli.Tests;

public class CliTests
{
    /// <summary>run.c's tokenizer over stories260K's tok512.bin, read once.</summary>
    private static readonly Lazy<LoPAProxy.Engine.Tokenizers.SentencePieceBpeTokenizer> StoriesTokenizer = new(() =>
        LoPAProxy.Engine.Tokenizers.SentencePieceBpeTokenizer.Load(SharedFiles.Path_("models", "stories260K",
            "tok512.bin"), 512));

    private static string Stories => SharedFiles.Path_("models", "stories260K", "stories260K.bin");

    [Fact]
    public void Generate_prints_run_cs_greedy_text()
    {
        // run.c's steps=48 count BOS and the prompt: 48 − P + 1 new tokens.
        var tok = StoriesTokenizer.Value;
        int newTokens = 48 - tok.Encode("Tom had a red kite", true, false).Length + 1;
        using var lopa = new LopaProcess("generate", "--model", Stories, "--prompt", "Tom had a red kite",
            "--max-tokens", newTokens.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(0, lopa.WaitForExit());
        Assert.Equal("Tom had a red kite. He liked to play with his toys and run around the room. He liked to play with his toys and run arou", lopa.Stdout.Trim());
    }

    [Fact]
    public async Task Serve_model_answers_on_a_real_socket_and_stops_on_sigterm()
    {
        using var lopa = new LopaProcess("serve-model", "--model", Stories, "--port", "0");
        string line = lopa.WaitForLine(l => l.StartsWith("serving stories260K at http://127.0.0.1:",
            StringComparison.Ordinal));
        string url = System.Text.RegularExpressions.Regex.Match(line, @"http://\S+").Value.TrimEnd(',');
        using var client = new HttpClient { BaseAddress = new Uri(url) };
        using var response = await client.PostAsync("/v1/completions",
            System.Net.Http.Json.JsonContent.Create(new
            {
                prompt = "Tom had a red kite", max_tokens = 6,
                temperature = 0
            }));
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        Assert.StartsWith(". He liked",
            JsonDocument.Parse(body).RootElement.GetProperty("choices")[0].GetProperty("text").GetString());
        lopa.Terminate();
        Assert.Equal(0, lopa.WaitForExit(30));
    }

    [Fact]
    public async Task Up_runs_the_whole_stack_prints_openai_settings_and_stops_on_sigterm()
    {
        string state = TempDir.Create();
        using var up = new LopaProcess("up", "--port", "0", "--model-port", "0", "--state", state, "--model", Stories);
        string baseUrl = up.WaitForLine(l => l.StartsWith("OPENAI_BASE_URL=",
            StringComparison.Ordinal))["OPENAI_BASE_URL=".Length..];
        string key = up.WaitForLine(l => l.StartsWith("OPENAI_API_KEY=",
            StringComparison.Ordinal))["OPENAI_API_KEY=".Length..];
        string model = up.WaitForLine(l => l.StartsWith("LOPA_MODEL=",
            StringComparison.Ordinal))["LOPA_MODEL=".Length..];
        Assert.StartsWith("curl ", up.WaitForLine(l => l.StartsWith("curl ", StringComparison.Ordinal)));
        // Nothing but progress before the settings: no compiler output, no log lines of lopa up's own set-up calls.
        string[] progress = { "starting the model server", "starting the proxy", "admin key (shown once",
            "LoPAProxy is up" };
        foreach (string line in up.Stdout.Split('\n').TakeWhile(l => !l.StartsWith("OPENAI_", StringComparison.Ordinal)))
            Assert.True(progress.Any(p => line.StartsWith(p, StringComparison.Ordinal)), $"not progress: {line}");
        // The demo adapter is the shipped one the trainer produced on SST-2 with the MiniLM encoder.
        Assert.Contains("demo adapter 'sst2-lopa' (minilm encoder)", up.Stdout);
        Assert.EndsWith(":sst2-lopa", model);
        using var client = new HttpClient();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer",
            key);
        using var response = await client.PostAsync(baseUrl + "/chat/completions",
            System.Net.Http.Json.JsonContent.Create(
            new { model, messages = new[] { new { role = "user", content = "Tom had a red kite" } }, max_tokens = 8 }));
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        // Serilog's request log: one readable line with the tenant and adapter, never the key.
        string logged = up.WaitForLine(l => l.Contains("POST /v1/chat/completions 200", StringComparison.Ordinal));
        Assert.Contains("tenant=demo adapter=sst2-lopa", logged);
        var afterSettings = up.Stdout.Split('\n').SkipWhile(l => !l.StartsWith("Ctrl-C", StringComparison.Ordinal));
        string logs = string.Join("\n", afterSettings);
        Assert.DoesNotContain(key, logs + up.Stderr);
        // The server saw the demo adapter's 10 soft-prompt rows plus BOS and the message's tokens.
        var tok = StoriesTokenizer.Value;
        Assert.Equal(10 + tok.Encode("Tom had a red kite", true, false).Length,
            JsonDocument.Parse(body).RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        await AssertTheDemoAnswersSentimentInChat(client, baseUrl, model);
        AssertClientLibrariesWorkWithTheDemo(baseUrl, key, model);
        using var unauthorised = await new HttpClient().GetAsync(baseUrl + "/models");
        Assert.Equal(401, (int)unauthorised.StatusCode);
        // The demo tenant lives in the store, so its adapters are listed and managed through the API.
        string models = await client.GetStringAsync(baseUrl + "/models");
        Assert.Contains($"\"{model}\"", models);
        Assert.True(File.Exists(Path.Combine(state, "lopa.db")));
        Assert.Contains("admin key (shown once", up.Stdout);
        up.Terminate();
        Assert.Equal(0, up.WaitForExit(30));
        Assert.Contains("stopped.", up.Stdout);
    }

    /// <summary>`lopa probe` (the images' health check): exit 1 with the reason for a port nobody listens on or a
    /// string that is not an http URL.</summary>
    [Theory]
    [InlineData("http://127.0.0.1:9/healthz", "lopa probe: http://127.0.0.1:9/healthz")]
    [InlineData("not a url", "is not an http(s) URL")]
    public void Probe_fails_with_the_reason(string url, string reason)
    {
        using var probe = new LopaProcess("probe", url, "--timeout", "2");
        Assert.Equal(1, probe.WaitForExit(30));
        Assert.Contains(reason, probe.Stderr);
    }

    /// <summary>
    /// The path users try first: a chat message "&lt;review&gt; Sentiment:" (the format the demo adapter was trained
    /// on, README) to the demo adapter gets an answer that starts with " positive" or " negative", and mostly the
    /// right one: measured 30 and 28 of the first 40 SST-2 dev reviews (majority class: 50.9 %) — at the client's
    /// default temperature too (no temperature sent: the adapter's generation default, 0, applies), with the same
    /// answers as at an explicit temperature 0.
    /// </summary>
    private static async Task AssertTheDemoAnswersSentimentInChat(HttpClient client, string baseUrl, string model)
    {
        var reviews = File.ReadLines(SharedFiles.Path_("data", "glue", "SST-2", "dev.tsv")).Skip(1).Take(40)
            .Select(l => l.Split('\t')).ToList();
        int words = 0, right = 0;
        foreach (string[] review in reviews)
        {
            string content = review[0] + " Sentiment:";
            string text = await ChatAnswerAsync(client, baseUrl, new
            {
                model, max_tokens = 6, temperature = 0, messages = new[] { new { role = "user", content } },
            });
            string atDefault = await ChatAnswerAsync(client, baseUrl, new
            {
                model, max_tokens = 6, messages = new[] { new { role = "user", content } },
            });
            Assert.Equal(text, atDefault);
            if (text.StartsWith("positive", StringComparison.Ordinal) || text.StartsWith("negative",
                StringComparison.Ordinal))
            {
                words++;
            }

            if (text.StartsWith(review[1] == "1" ? "positive" : "negative", StringComparison.Ordinal)) right++;
        }
        Assert.True(words >= 24, $"{words} of 40 chat answers start with a sentiment word");
        Assert.True(right >= 24, $"{right} of 40 chat answers name the review's sentiment");
    }

    /// <summary>#25 item 4: the Vercel AI SDK (Responses API and chat), LangChain (invoke, stream, Responses API,
    /// withStructuredOutput) and the official client (json_schema on chat and Responses, logprobs) against `lopa up`
    /// with the demo adapter, unmodified (tests/node).</summary>
    private static void AssertClientLibrariesWorkWithTheDemo(string baseUrl, string key, string model)
    {
        var tok = StoriesTokenizer.Value;
        var environment = new Dictionary<string, string>
        {
            ["OPENAI_BASE_URL"] = baseUrl, ["OPENAI_API_KEY"] = key, ["LOPA_MODEL"] = model,
            ["DOT_TOKEN"] = tok.Encode(".", false, false, continuation: true).Single()
                .ToString(CultureInfo.InvariantCulture),
        };
        JsonElement vercel = JsonDocument.Parse(Node.RunWithEnv("vercel-ai.mjs", environment)).RootElement;
        string chat = vercel.GetProperty("chat").GetProperty("text").GetString()!;
        Assert.False(string.IsNullOrWhiteSpace(chat));
        Assert.Equal(chat, vercel.GetProperty("generated").GetProperty("text").GetString());
        Assert.Equal(chat, vercel.GetProperty("streamed").GetProperty("text").GetString());
        JsonElement langchain = JsonDocument.Parse(Node.RunWithEnv("langchain.mjs", environment)).RootElement;
        string invoked = langchain.GetProperty("invoked").GetProperty("text").GetString()!;
        Assert.Equal(invoked, langchain.GetProperty("streamed").GetString());
        Assert.Equal(invoked, langchain.GetProperty("responses").GetProperty("text").GetString());
        string[] sentiments = ["positive", "negative"];
        Assert.Contains(langchain.GetProperty("structured").GetProperty("sentiment").GetString(), sentiments);
        JsonElement openai = JsonDocument.Parse(Node.RunWithEnv("openai-structured.mjs", environment)).RootElement;
        Assert.Contains(openai.GetProperty("schemaChat").GetProperty("sentiment").GetString(), sentiments);
        Assert.Contains(openai.GetProperty("schemaResponse").GetProperty("parsed").GetProperty("sentiment")
            .GetString(), sentiments);
        JsonElement logprobs = openai.GetProperty("logprobs");
        Assert.Equal(logprobs.GetProperty("completionTokens").GetInt32(),
            logprobs.GetProperty("tokens").GetArrayLength());
    }

    private static async Task<string> ChatAnswerAsync(HttpClient client, string baseUrl, object body)
    {
        using var response = await client.PostAsync(baseUrl + "/chat/completions",
            System.Net.Http.Json.JsonContent.Create(body));
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement
            .GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!.TrimStart();
    }

    [Fact]
    public void A_store_that_cannot_be_opened_at_start_up_is_one_message_and_exit_1()
    {
        // As in a read-only container: the store's folder cannot be made (here under /proc, refused even to root).
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(RepoFiles.Path_("proxy.json")))!;
        config["LoPA"]!["Store"]!["Path"] = "/proc/lopa-nowhere/lopa.db";
        config["LoPA"]!["Encoders"] = new System.Text.Json.Nodes.JsonArray("fm-mean");
        config["LoPA"]!["EncoderFiles"]!["FoundationModel"] = Stories;
        foreach (var (_, cluster) in config["LoPA"]!["Clusters"]!.AsObject()) cluster!["ModelPath"] = Stories;
        string file = Path.Combine(TempDir.Create(), "proxy.json");
        File.WriteAllText(file, config.ToJsonString());
        using var proxy = new LopaProcess("proxy", "--config", file, "--urls", "http://127.0.0.1:0");
        Assert.Equal(1, proxy.WaitForExit());
        Assert.StartsWith("lopa: the store cannot be opened (the SQLite file /proc/lopa-nowhere/lopa.db)",
            proxy.Stderr);
        Assert.DoesNotContain("   at ", proxy.Stderr);
    }

    [Fact]
    public void Bad_arguments_are_reported()
    {
        using var bad = new LopaProcess("generate", "--model", "/nonexistent/model.bin");
        Assert.NotEqual(0, bad.WaitForExit());
        Assert.StartsWith("lopa: model not found", bad.Stderr);
        Assert.DoesNotContain("   at ", bad.Stderr); // a message, not a stack trace
    }

    [Fact]
    public async Task Up_detached_gives_its_settings_to_env_and_the_admin_and_adapter_commands_work_against_it()
    {
        string state = TempDir.Create();
        string[] common = { "--state", state };
        string upOutput;
        using (var up = new LopaProcess(new[] { "up", "--detach", "--port", "0", "--model-port", "0", "--model",
            Stories }.Concat(common).ToArray()))
        {
            Assert.True(up.WaitForExit(150) == 0, up.Stderr);
            Assert.Contains("OPENAI_BASE_URL=", up.Stdout);
            upOutput = up.Stdout;
        }
        try
        {
            using var env = new LopaProcess(new[] { "env" }.Concat(common).ToArray());
            Assert.Equal(0, env.WaitForExit());
            var settings = env.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => l["export ".Length..].Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]);
            string url = settings["LOPA_URL"], adminKey = File.ReadAllText(Path.Combine(state, "admin.key")).Trim();
            string[] admin = { "--url", url, "--admin-key", adminKey };
            using (var create = new LopaProcess(new[] { "tenant", "create", "acme" }.Concat(admin).ToArray()))
                Assert.True(create.WaitForExit() == 0, create.Stderr);
            string acmeKey;
            using (var issue = new LopaProcess(new[] { "key", "issue", "acme", "--json" }.Concat(admin).ToArray()))
            {
                Assert.True(issue.WaitForExit() == 0, issue.Stderr);
                acmeKey = JsonDocument.Parse(issue.Stdout).RootElement.GetProperty("key").GetString()!;
            }
            using (var wrong = new LopaProcess("tenant", "list", "--url", url, "--admin-key",
                "not-the-admin-key-000000"))
            {
                Assert.Equal(1, wrong.WaitForExit());
                Assert.Contains("401", wrong.Stderr);
            }
            using (var list = new LopaProcess("adapter", "list", "--url", url, "--key", acmeKey, "--json"))
            {
                Assert.True(list.WaitForExit() == 0, list.Stderr);
                Assert.Equal(0,
                    JsonDocument.Parse(list.Stdout).RootElement.GetProperty("data").GetArrayLength()); // acme has none
            }
            // For people, lists are tables.
            using (var tenants = new LopaProcess(new[] { "tenant", "list" }.Concat(admin).ToArray()))
            {
                Assert.True(tenants.WaitForExit() == 0, tenants.Stderr);
                string[] rows = tenants.Stdout.Split('\n');
                Assert.Matches(@"^name\s+disabled\s+created$", rows[0]);
                Assert.Contains(rows, r => r.StartsWith("acme ", StringComparison.Ordinal) && r.Contains("false"));
            }
            // Adapters kept in folders come in with one command, while the proxy runs, and are served at once.
            string folder = TempDir.Create();
            var config = new LoPAProxy.Core.Adapters.AdapterConfig
            {
                NumVirtualTokens = 3, TokenDim = 64, Rank = 2, HiddenSize = 8, Encoder = "minilm", EncoderDim = 384,
            };
            var tone = LoPAProxy.Core.Adapters.LopaAdapter.CreateRandom(config, 5);
            tone.SaveDirectory(Path.Combine(folder, "acme", "tone"));
            Directory.CreateDirectory(Path.Combine(folder, "acme", "empty"));
            string[] import = { "adapter", "import", folder, "--sqlite", Path.Combine(state, "lopa.db") };
            using (var first = new LopaProcess(import))
            {
                Assert.True(first.WaitForExit() == 0, first.Stderr);
                Assert.Contains("imported   acme/tone@1", first.Stdout);
                Assert.Contains("skipped    acme/empty@1", first.Stdout);
            }
            using (var again = new LopaProcess(import))
            {
                Assert.True(again.WaitForExit() == 0, again.Stderr);
                Assert.Contains("unchanged  acme/tone@1", again.Stdout);
            }
            using (var listed = new LopaProcess("adapter", "list", "--url", url, "--key", acmeKey))
            {
                Assert.True(listed.WaitForExit() == 0, listed.Stderr);
                Assert.Matches(@"(?m)^tone\s+1\s+", listed.Stdout);
            }
            using var acme = new HttpClient();
            acme.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer",
                acmeKey);
            using (var served = await acme.PostAsync(settings["OPENAI_BASE_URL"] + "/completions",
                System.Net.Http.Json.JsonContent.Create(
                    new { model = "stories260K:tone", prompt = "Once", max_tokens = 2 })))
            {
                string text = await served.Content.ReadAsStringAsync();
                Assert.True(served.IsSuccessStatusCode, text);
                var tok = StoriesTokenizer.Value;
                int prompt = JsonDocument.Parse(text).RootElement.GetProperty("usage").GetProperty("prompt_tokens")
                    .GetInt32();
                Assert.Equal(3 + tok.Encode("Once", true, false).Length, prompt); // the adapter's 3 rows + BOS + text
            }
            using var client = new HttpClient();
            client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", settings["OPENAI_API_KEY"]);
            using var response = await client.PostAsync(settings["OPENAI_BASE_URL"] + "/chat/completions",
                System.Net.Http.Json.JsonContent.Create(
                new
                {
                    model = settings["LOPA_MODEL"], messages = new[] { new { role = "user",
                    content = "Tom had a red kite" } }, max_tokens = 4
                }));
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
            SecretsStayPrivate(state, upOutput, adminKey, settings["OPENAI_API_KEY"]);
        }
        finally
        {
            using var down = new LopaProcess(new[] { "down" }.Concat(common).ToArray());
            Assert.True(down.WaitForExit(60) == 0, down.Stderr);
        }
        // Stopped: `lopa env` no longer hands out settings that point at nothing.
        using var stale = new LopaProcess(new[] { "env" }.Concat(common).ToArray());
        Assert.Equal(1, stale.WaitForExit());
        Assert.Contains("no `lopa up` is running here", stale.Stderr);
    }

    /// <summary>
    /// #22 item 3: the keys reach the terminal that ran `lopa up --detach` and no log; everything in the state folder
    /// (keys, the SQLite store with its -wal/-shm, the converted model, the log) is its owner's alone.
    /// </summary>
    private static void SecretsStayPrivate(string state, string terminal, string adminKey, string tenantKey)
    {
        Assert.Contains(tenantKey, terminal);
        Assert.Contains(adminKey, terminal); // made by this run: shown once, here
        string log = File.ReadAllText(Path.Combine(state, "up.log"));
        Assert.Contains("POST /v1/chat/completions 200", log); // requests were logged …
        Assert.DoesNotContain(adminKey, log); // … and no key with them
        Assert.DoesNotContain(tenantKey, log);
        const UnixFileMode Others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
            | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        string[] entries = Directory.GetFileSystemEntries(state, "*", SearchOption.AllDirectories);
        Assert.Contains(entries, e => e.EndsWith("lopa.db-wal", StringComparison.Ordinal));
        Assert.Contains(entries, e => e.EndsWith(".gguf", StringComparison.Ordinal));
        foreach (string entry in entries.Append(state))
            Assert.True((File.GetUnixFileMode(entry) & Others) == 0, $"{entry}: {File.GetUnixFileMode(entry)}");
    }
}
