using System.Diagnostics;
using System.Text.Json;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Proxy.Tests.Hardening;

/// <summary>Issue 10's request-path defects, each as a regression test against recording backends.</summary>
public class RequestPathTests(HardeningFixture f) : IClassFixture<HardeningFixture>
{
    [Fact]
    public async Task Tenant_credentials_never_reach_the_backend_and_the_backend_key_does()
    {
        f.Backend.Clear();
        var (status, _) = await f.PostAsync(HardeningFixture.AcmeKey, "/v1/chat/completions",
            HardeningFixture.Chat("stories260K"),
            r =>
            {
                r.Headers.Add("X-LoPA-Adapter", "story");
                r.Headers.Add("X-LoPA-Anything", "x");
                r.Headers.Add("Cookie", "session=tenant-cookie");
                r.Headers.Add("X-Api-Key", "tenant-other-key");
                r.Headers.Add("Proxy-Authorization", "Basic dGVuYW50");
                // #22 item 8: an allow-list, not a list of known credential headers.
                r.Headers.Add("Authentication", "tenant-authentication");
                r.Headers.Add("X-Auth-Token", "tenant-token");
                r.Headers.Add("X-Amz-Security-Token", "tenant-aws");
                r.Headers.Add("OpenAI-Organization", "org-tenant");
                r.Headers.Add("X-Made-Up-Secret", "tenant-made-up");
                r.Headers.Add("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
                r.Headers.Add("x-request-id", "client-request-7");
                r.Headers.Add(HardeningFixture.ForwardedHeader, "operator-allowed");
            });
        Assert.Equal(200, status);
        Received got = Assert.Single(f.Backend.Requests);
        Assert.Equal("Bearer " + HardeningFixture.BackendKey, got.Headers["Authorization"]);
        foreach (string header in new[] { "Cookie", "X-Api-Key", "Proxy-Authorization", "X-LoPA-Adapter",
            "X-LoPA-Anything", "Authentication", "X-Auth-Token", "X-Amz-Security-Token", "OpenAI-Organization",
            "X-Made-Up-Secret" })
        {
            Assert.False(got.Headers.ContainsKey(header), $"{header} was forwarded");
        }

        Assert.True(got.Headers.ContainsKey("traceparent")); // tracing passes (as the proxy's own span, where traced)
        Assert.Equal("client-request-7", got.Headers["x-request-id"]);
        Assert.Equal("operator-allowed", got.Headers[HardeningFixture.ForwardedHeader]);
        string everything = string.Join("\n", got.Headers.Select(h => h.Key + ": " + h.Value)) + got.Body;
        Assert.DoesNotContain(HardeningFixture.AcmeKey, everything);
        Assert.DoesNotContain("tenant-cookie", everything);
        Assert.Contains("prompt_embeds", got.Body); // the adapter, named only by the removed header, still applied
    }

    [Fact]
    public async Task Forwarded_bodies_escape_only_what_json_requires()
    {
        // #26: the default encoder wrote every base64 '+' as \u002B (+26 % on the wire for a soft-prompt body).
        f.Backend.Clear();
        var (status, text) = await f.PostAsync(HardeningFixture.AcmeKey, "/v1/completions",
            new { model = "stories260K:story", prompt = "Once upon a time", max_tokens = 2 });
        Assert.True(status == 200, text);
        Received completions = Assert.Single(f.Backend.Requests);
        string embeds = completions.Json.GetProperty("prompt_embeds").GetString()!;
        Assert.Contains('+', embeds);
        Assert.Contains(embeds, completions.Body); // the base64 text exactly as it is, unescaped
        Assert.DoesNotContain("\\u002B", completions.Body);
        f.Backend.Clear();
        (status, text) = await f.PostAsync(HardeningFixture.AcmeKey, "/v1/chat/completions",
            HardeningFixture.Chat("stories260K:story", "Zoë's café <b>naïve</b> & more"));
        Assert.True(status == 200, text);
        Received chat = Assert.Single(f.Backend.Requests);
        Assert.Contains("Zoë's café <b>naïve</b> & more", chat.Body); // as sent, not \u00EB or \u003C
    }

    /// <summary>
    /// #26: the full sequence is streamed into the body as it is sent, yet the text is bit for bit the base64 of
    /// torch.save([Z ; the FM's rows]) made whole by hand — per prompt, in order — so vLLM's prefix cache still
    /// hits.
    /// </summary>
    [Fact]
    public async Task Streamed_full_sequences_are_bit_identical_to_the_whole_tensor_made_by_hand()
    {
        f.Backend.Clear();
        string[] prompts = ["Tom had a red kite", "Once upon a time there was a dog"];
        var (status, text) = await f.PostAsync(HardeningFixture.AcmeKey, "/v1/completions",
            new { model = "stories260K:story", prompt = prompts, max_tokens = 2 });
        Assert.True(status == 200, text);
        Received got = Assert.Single(f.Backend.Requests);
        Assert.Equal(got.Body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture),
            got.Headers["Content-Length"]);
        string[] sent = got.Json.GetProperty("prompt_embeds").EnumerateArray().Select(e => e.GetString()!).ToArray();
        var adapter = LoPAProxy.Core.Adapters.LopaAdapter.Load(Path.Combine(f.AdaptersDir, "acme", "story"));
        var encoder = LoPAProxy.Core.Encoders.EncoderFactory.Create("fm-mean",
            new LoPAProxy.Core.Encoders.EncoderOptions { FoundationModel = f.ModelPath });
        var tokenizer = LoPAProxy.Engine.Tokenizers.SentencePieceBpeTokenizer.Load(
            LoPAProxy.Engine.Tests.Support.SharedFiles.Path_("models", "stories260K", "tok512.bin"), 512);
        float[] table = LoPAProxy.Engine.Formats.Llama2c.Llama2cCheckpoint.Load(f.ModelPath).Weights.TokenEmbedding
            .ToArray();
        for (int i = 0; i < prompts.Length; i++)
        {
            var x = new float[encoder.Dim];
            encoder.Encode([prompts[i]], x);
            float[] z = new LoPAProxy.Core.Generation.SoftPromptGenerator(adapter).Generate(x, 1);
            int[] ids = tokenizer.Encode(prompts[i], true, false);
            float[] rows = z.Concat(ids.SelectMany(t => table.AsSpan(t * 64, 64).ToArray())).ToArray();
            string expected = Convert.ToBase64String(LoPAProxy.Engine.Formats.Torch.TorchFile.SaveTensor(
                LoPAProxy.Engine.Tensors.Tensor.FromArray(rows, rows.Length / 64, 64)));
            Assert.Equal(expected, sent[i]);
        }
    }

    [Fact]
    public async Task Without_a_backend_key_no_authorization_is_sent_at_all()
    {
        f.Backend.Clear();
        var (status, _) = await f.PostAsync(HardeningFixture.AcmeKey, "/v1/completions",
            new { model = "stories260K:story", prompt = "Once upon a time", max_tokens = 2 });
        Assert.Equal(200, status);
        Assert.False(Assert.Single(f.Backend.Requests).Headers.ContainsKey("Authorization"));
    }

    public static TheoryData<string> ChatSpellings => new()
    {
        "/v1/chat/completions/", "/V1/Chat/Completions", "/v1//chat/completions", "/v1///chat/completions",
        "/v1/chat/completions%2F", "/v1/chat%2Fcompletions", "/v1/chat/%63ompletions", "/v1/chat/completions//",
        "/v1/CHAT/COMPLETIONS/", "/v1/chat/completions%252F", "/v1\\chat\\completions",
    };

    [Theory]
    [MemberData(nameof(ChatSpellings))]
    public async Task No_spelling_of_the_chat_path_forwards_an_adapter_request_without_its_soft_prompt(string path)
    {
        f.Backend.Clear();
        var (status, text) = await f.PostAsync(HardeningFixture.AcmeKey, path,
            HardeningFixture.Chat("stories260K:story"));
        if (status is >= 400 and < 500)
        {
            Assert.Empty(f.Backend.Requests);
            return;
        }
        Assert.True(status == 200, $"{path}: {status} {text}");
        Received got = Assert.Single(f.Backend.Requests);
        Assert.Equal("/v1/chat/completions", got.Path);
        JsonElement content = got.Json.GetProperty("messages")[0].GetProperty("content");
        Assert.Equal("prompt_embeds", content[0].GetProperty("type").GetString());
        Assert.Equal("stories260K", got.Json.GetProperty("model").GetString());
    }

    [Theory]
    [InlineData("/v1/completions/")]
    [InlineData("/V1/COMPLETIONS")]
    [InlineData("/v1//completions")]
    [InlineData("/v1/completions%2F")]
    public async Task No_spelling_of_the_completions_path_skips_the_soft_prompt(string path)
    {
        f.Backend.Clear();
        var (status, text) = await f.PostAsync(HardeningFixture.AcmeKey, path,
            new { model = "stories260K:story", prompt = "Once upon a time", max_tokens = 2 });
        if (status is >= 400 and < 500)
        {
            Assert.Empty(f.Backend.Requests);
            return;
        }
        Assert.True(status == 200, $"{path}: {status} {text}");
        Received got = Assert.Single(f.Backend.Requests);
        Assert.True(got.Json.TryGetProperty("prompt_embeds", out _), $"{path} was forwarded without prompt_embeds");
        Assert.False(got.Json.TryGetProperty("prompt", out _));
    }

    [Theory]
    [InlineData("POST", "/v1/embeddings")]
    [InlineData("POST", "/generate")]
    [InlineData("GET", "/v1/models")]
    [InlineData("GET", "/v1/chat/completions")]
    public async Task Other_endpoints_refuse_a_request_that_names_an_adapter(string method, string path)
    {
        f.Backend.Clear();
        using HttpClient c = f.Client(HardeningFixture.AcmeKey);
        var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method == "POST") request.Content = JsonContentOf(new { model = "stories260K:story", input = "x" });
        else request.Headers.Add("X-LoPA-Adapter", "story");
        using HttpResponseMessage response = await c.SendAsync(request);
        Assert.Equal(400, (int)response.StatusCode);
        HardeningFixture.IsError(await response.Content.ReadAsStringAsync(), "adapter_not_supported");
        Assert.Empty(f.Backend.Requests);
    }

    /// <summary>/v1/responses carries adapters since it is bridged onto chat (#25): never without the soft
    /// prompt, in any spelling.</summary>
    [Theory]
    [InlineData("/v1/responses")]
    [InlineData("/V1//Responses/")]
    [InlineData("/v1/%72esponses")]
    public async Task A_responses_request_that_names_an_adapter_reaches_the_backend_with_its_soft_prompt(string path)
    {
        f.Backend.Clear();
        var (status, text) = await f.PostAsync(HardeningFixture.AcmeKey, path,
            new { model = "stories260K:story", input = "Tom had a red kite" });
        Assert.True(status == 200, $"{path}: {status} {text}");
        Received got = Assert.Single(f.Backend.Requests);
        Assert.Equal("/v1/chat/completions", got.Path);
        Assert.Contains("\"prompt_embeds\"", got.Body);
        Assert.Equal("response", System.Text.Json.JsonDocument.Parse(text).RootElement.GetProperty("object")
            .GetString());
    }

    [Fact]
    public async Task Client_supplied_embeddings_are_refused_by_default_in_every_form()
    {
        f.Backend.Clear();
        string data = Convert.ToBase64String(LoPAProxy.Engine.Formats.Torch.TorchFile.SaveTensor(
            LoPAProxy.Engine.Tensors.Tensor.FromArray(new float[2 * 64], 2, 64)));
        object[] bodies =
        {
            new { model = "stories260K", prompt_embeds = data, max_tokens = 2 },
            new { model = "stories260K", prompt_embeds = new[] { data, data }, max_tokens = 2 },
            new { model = "stories260K", messages = new object[] { new { role = "user",
                content = new object[] { new { type = "prompt_embeds", data } } } } },
            new { input_embeds = new[] { new float[64] }, sampling_params = new { max_new_tokens = 2 } },
        };
        string[] paths = { "/v1/completions", "/v1/completions", "/v1/chat/completions", "/generate" };
        for (int i = 0; i < bodies.Length; i++)
        {
            var (status, text) = await f.PostAsync(HardeningFixture.AcmeKey, paths[i], bodies[i]);
            Assert.True(status == 400, $"body {i}: {status} {text}");
            HardeningFixture.IsError(text, "prompt_embeds_not_allowed");
        }
        Assert.Empty(f.Backend.Requests);
    }

    [Fact]
    public async Task An_opted_in_tenants_embeddings_are_validated_strictly_and_forwarded_re_encoded()
    {
        // Written by real PyTorch: a dense [3, 64] fp32 tensor (also with a batch dim), a sparse one, a bf16 one.
        string script = """
            import base64, io, sys, torch
            def b64(t):
                buf = io.BytesIO(); torch.save(t, buf); return base64.b64encode(buf.getvalue()).decode()
            torch.manual_seed(0)
            dense = torch.randn(3, 64)
            print(b64(dense)); print(b64(dense.unsqueeze(0))); print(b64(dense.to_sparse()))
            print(b64(dense.to(torch.bfloat16))); print(b64(torch.randn(3, 32)))
            nan = dense.clone(); nan[1, 5] = float('nan'); print(b64(nan))
            print(base64.encodebytes(io.BytesIO().getvalue() or b'x').decode().strip())
            print(' '.join(f'{v:.9g}' for v in dense.flatten().tolist()))
            """;
        string[] lines = PyTorch.Run(script).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string dense = lines[0], batched = lines[1], sparse = lines[2], bf16 = lines[3], narrow = lines[4], nan = lines[5];
        float[] expected = lines[7].Split(' ').Select(float.Parse).ToArray();

        f.Backend.Clear();
        foreach (string good in new[] { dense, batched })
        {
            var (status, text) = await f.PostAsync(HardeningFixture.EmbedderKey, "/v1/completions",
                new { model = "stories260K", prompt_embeds = good, max_tokens = 2 });
            Assert.True(status == 200, text);
        }
        Assert.Equal(2, f.Backend.Requests.Count);
        foreach (Received got in f.Backend.Requests)
        {
            byte[] forwarded = Convert.FromBase64String(got.Json.GetProperty("prompt_embeds").GetString()!);
            var tensor = LoPAProxy.Engine.Formats.Torch.TorchFile.LoadTensor(forwarded, "forwarded");
            Assert.Equal(new[] { 3, 64 }, tensor.Values.Shape.ToArray());
            Assert.Equal(expected, tensor.Values.ToArray());
        }

        f.Backend.Clear();
        string lineBroken = dense[..40] + "\n" + dense[40..];
        string urlSafe = dense.Replace('+', '-').Replace('/', '_');
        var refused = new (string Data, string Why)[]
        {
            (sparse, "sparse"), (bf16, "dtype"), (narrow, "width"), (nan, "nan"), (lineBroken, "line break"),
            (urlSafe == dense ? "%%%%" : urlSafe, "url-safe"), ("AAAA", "not a tensor"), (dense[..^4], "truncated"),
        };
        foreach (var (data, why) in refused)
        {
            var (status, text) = await f.PostAsync(HardeningFixture.EmbedderKey, "/v1/completions",
                new { model = "stories260K", prompt_embeds = data, max_tokens = 2 });
            Assert.True(status == 400, $"{why}: {status} {text}");
            HardeningFixture.IsError(text, "invalid_prompt_embeds");
        }
        var (s2, t2) = await f.PostAsync(HardeningFixture.EmbedderKey, "/generate",
            new { input_embeds = new[] { new float[63] }, sampling_params = new { max_new_tokens = 2 } });
        Assert.True(s2 == 400, t2);
        Assert.Empty(f.Backend.Requests);
    }

    [Fact]
    public async Task A_prompt_over_the_context_is_refused_before_any_encoding_and_memory_stays_flat()
    {
        string huge = string.Concat(Enumerable.Repeat("Tom had a red kite. ", 195_000)); // 3.9 MB
        var body = JsonSerializer.Serialize(new { model = "stories260K:story", prompt = huge, max_tokens = 4 });
        f.Backend.Clear();
        var (warm, _) = await f.PostAsync(HardeningFixture.AcmeKey, "/v1/completions", body);
        Assert.Equal(400, warm);
        GC.Collect();
        long before = Process.GetCurrentProcess().WorkingSet64;
        double best = await FastestRefusalAsync(body, "context_length_exceeded");
        long grown = Process.GetCurrentProcess().WorkingSet64 - before;
        Assert.True(best < 1000, $"refusal took {best:F0} ms");
        Assert.True(grown < 300L << 20, $"RSS grew {grown >> 20} MiB");
        Assert.Empty(f.Backend.Requests);

        // Chat is measured against the model's context too, and a list of 5,000 prompts is refused by count.
        var (chatStatus, chatText) = await f.PostAsync(HardeningFixture.AcmeKey, "/v1/chat/completions",
            HardeningFixture.Chat("stories260K:story", huge[..200_000]));
        Assert.Equal(400, chatStatus);
        HardeningFixture.IsError(chatText, "context_length_exceeded");
        string many = JsonSerializer.Serialize(new
        {
            model = "stories260K:story",
            prompt = Enumerable.Repeat("Tom had a red kite", 5000)
        });
        double bestList = await FastestRefusalAsync(many, "too_many_prompts");
        Assert.True(bestList < 100, $"refusal took {bestList:F0} ms");
        Assert.Empty(f.Backend.Requests);
    }

    /// <summary>The fastest of three refusals of one completions body (best-of-3 keeps a busy CI machine's noise
    /// out).</summary>
    private async Task<double> FastestRefusalAsync(string body, string code)
    {
        double best = double.MaxValue;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            var sw = Stopwatch.StartNew();
            var (status, text) = await f.PostAsync(HardeningFixture.AcmeKey, "/v1/completions", body);
            best = Math.Min(best, sw.Elapsed.TotalMilliseconds);
            Assert.Equal(400, status);
            HardeningFixture.IsError(text, code);
        }
        return best;
    }

    [Fact]
    public async Task Token_counts_include_the_soft_prompt_and_max_tokens_and_token_id_prompts()
    {
        // The longest run of "Tom" that fits stories260K's 512-token context with BOS (counted by its tokenizer).
        var model = LoPAProxy.Proxy.Models.FoundationModel.Load(f.ModelPath);
        Assert.Equal(512, model.ContextLength);
        int Count(int n) => model.Tokenizer.Encode(Toms(n), addBos: true, addEos: false).Length;
        int words = Enumerable.Range(1, 1000).Last(n => Count(n) <= 512);
        int tokens = Count(words);
        Assert.InRange(tokens, 509, 512); // too long once the adapter's 4 rows are added

        f.Backend.Clear();
        var (s1, t1) = await f.PostAsync(HardeningFixture.AcmeKey, "/v1/completions", new
        {
            model = "stories260K",
            prompt = Toms(words)
        });
        var (s2, t2) = await f.PostAsync(HardeningFixture.AcmeKey, "/v1/completions",
            new { model = "stories260K", prompt = Toms(words), max_tokens = 512 - tokens + 1 });
        var (s3, t3) = await f.PostAsync(HardeningFixture.AcmeKey, "/v1/completions",
            new { model = "stories260K", prompt = Enumerable.Repeat(5, 513).ToArray() });
        var (s4, t4) = await f.PostAsync(HardeningFixture.AcmeKey, "/v1/completions",
            new { model = "stories260K:story", prompt = Toms(words) });
        Assert.True(s1 == 200, t1);
        Assert.True(s2 == 400, t2);
        HardeningFixture.IsError(t2, "context_length_exceeded");
        Assert.True(s3 == 400, t3);
        HardeningFixture.IsError(t3, "context_length_exceeded");
        Assert.Equal(400, s4);
        Assert.Contains("4 soft-prompt rows", HardeningFixture.IsError(t4,
            "context_length_exceeded").GetProperty("message").GetString());
        Assert.Single(f.Backend.Requests);
    }

    private static string Toms(int n) => string.Join(" ", Enumerable.Repeat("Tom", n));

    [Theory]
    [InlineData("/v1/chat/completions", """{"model":"stories260K:story","model":"stories260K","messages":[{"role":"user","content":"x"}]}""")]
    [InlineData("/v1/completions", """{"model":"stories260K","prompt":"a","prompt":"b"}""")]
    [InlineData("/v1/chat/completions", """{"model":"stories260K","messages":[{"role":"user","role":"system","content":"x"}]}""")]
    public async Task Duplicate_keys_are_a_400(string path, string json)
    {
        f.Backend.Clear();
        var (status, text) = await f.PostAsync(HardeningFixture.AcmeKey, path, json);
        Assert.Equal(400, status);
        HardeningFixture.IsError(text, "invalid_json");
        Assert.Empty(f.Backend.Requests);
    }

    [Fact]
    public async Task A_backend_dying_mid_stream_ends_the_stream_with_an_openai_error_event()
    {
        using HttpClient c = f.Client(HardeningFixture.AcmeKey);
        var request = new HttpRequestMessage(HttpMethod.Post, "/dying/v1/chat/completions")
        {
            Content = JsonContentOf(HardeningFixture.Chat("stories260K:story", stream: true)),
        };
        using HttpResponseMessage response = await c.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(200, (int)response.StatusCode);
        string text = await response.Content.ReadAsStringAsync(); // ends cleanly: no exception from a reset
        string[] events = text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => e.Trim()).Where(e =>
            e.Length > 0).ToArray();
        Assert.Equal(3, events.Length);
        JsonElement error = JsonDocument.Parse(events[^1]["data: ".Length..]).RootElement.GetProperty("error");
        Assert.Equal("backend_stream_error", error.GetProperty("code").GetString());
        Assert.Equal("server_error", error.GetProperty("type").GetString());

        // The official openai client raises an APIError carrying that error.
        string result = Node.RunWithEnv("openai-stream-error.mjs", new()
        {
            ["OPENAI_BASE_URL"] = f.ProxyUrl + "/dying/v1", ["OPENAI_API_KEY"] = HardeningFixture.AcmeKey,
            ["LOPA_MODEL"] = "stories260K:story",
        });
        JsonElement summary = JsonDocument.Parse(result).RootElement;
        Assert.Equal("APIError", summary.GetProperty("name").GetString());
        Assert.Equal("backend_stream_error", summary.GetProperty("code").GetString());
        Assert.Equal("part0 part1 ", summary.GetProperty("received").GetString());
    }

    [Fact]
    public async Task Every_response_names_its_request_id()
    {
        using HttpClient c = f.Client(null);
        using HttpResponseMessage response = await c.PostAsync("/v1/chat/completions",
            JsonContentOf(HardeningFixture.Chat("x")));
        Assert.Equal(401, (int)response.StatusCode);
        Assert.True(response.Headers.TryGetValues("x-request-id", out var ids) && ids.Single().Length > 0);
    }

    private static StringContent JsonContentOf(object body) =>
        new(JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json");
}
