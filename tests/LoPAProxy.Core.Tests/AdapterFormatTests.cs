using LoPAProxy.Core.Adapters;
using LoPAProxy.Core.Generation;
using LoPAProxy.Engine.Formats.SafeTensors;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Core.Tests;

public class AdapterFormatTests
{
    [Theory]
    [InlineData(Composition.Lopa)]
    [InlineData(Composition.LopaAdd)]
    [InlineData(Composition.PromptTuning)]
    [InlineData(Composition.Idpg)]
    public void Directory_and_single_file_forms_round_trip(Composition composition)
    {
        LopaAdapter a = GeneratorTests.Random(GeneratorTests.Config(composition), 3);
        string dir = TempDir.Create();
        a.SaveDirectory(dir);
        LopaAdapter fromDir = LopaAdapter.Load(dir);
        string single = Path.Combine(TempDir.Create(), "adapter.safetensors");
        File.WriteAllBytes(single, a.ToSingleFile());
        LopaAdapter fromFile = LopaAdapter.Load(single);
        float[] x = Rand.Floats(new Random(1), 3 * a.Config.EncoderDim);
        int batch = composition == Composition.PromptTuning ? 1 : 3;
        float[] z = new SoftPromptGenerator(a).Generate(x, batch);
        Assert.Equal(z, new SoftPromptGenerator(fromDir).Generate(x, batch));
        Assert.Equal(z, new SoftPromptGenerator(fromFile).Generate(x, batch));
        Assert.Equal(a.Config, fromDir.Config);
        Assert.Equal(a.ToSingleFile(), fromFile.ToSingleFile()); // deterministic bytes
    }

    [Fact]
    public void A_peft_prompt_tuning_adapter_loads_as_is_and_gives_z_s()
    {
        string dir = TempDir.Create();
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), """
            {"auto_mapping": null, "base_model_name_or_path": "meta-llama/Llama-2-7b-hf", "inference_mode": true,
             "num_attention_heads": 32, "num_layers": 32, "num_transformer_submodules": 1, "num_virtual_tokens": 10,
             "peft_type": "PROMPT_TUNING", "prompt_tuning_init": "RANDOM", "prompt_tuning_init_text": null,
             "revision": null, "task_type": "CAUSAL_LM", "token_dim": 64, "tokenizer_name_or_path": null}
            """);
        float[] zs = Rand.Floats(new Random(4), 640);
        new SafeTensorsWriter().Add("prompt_embeddings", Tensor.FromArray(zs, 10, 64)).Save(Path.Combine(dir,
            "adapter_model.safetensors"));
        LopaAdapter a = LopaAdapter.Load(dir);
        Assert.Equal(Composition.PromptTuning, a.Config.Composition);
        Assert.Equal(640, a.Config.TrainableParameters);
        Assert.Equal(zs, new SoftPromptGenerator(a).Generate(ReadOnlySpan<float>.Empty, 1));
    }

    [Fact]
    public void Trainable_parameters_follow_the_papers_formula()
    {
        // DESIGN §2: GLUE, d = h = 1024, H = 256, m = 10: r = 4 → 1.60 M, r = 1 → 0.80 M.
        var c = new AdapterConfig
        {
            NumVirtualTokens = 10, TokenDim = 1024, EncoderDim = 1024, HiddenSize = 256,
            Rank = 4, Encoder = "x"
        };
        Assert.Equal(10 * 1024 + (1024 * 256 + 256 + 256 * 40 + 40) + (1024 * 256 + 256 + 256 * 4096 + 4096),
            c.TrainableParameters);
        Assert.Equal(1.60, c.TrainableParameters / 1e6, 2);
        Assert.Equal(0.80, (c with { Rank = 1 }).TrainableParameters / 1e6, 2);
    }

    private static string Expect(Action load) => Assert.Throws<AdapterException>(load).Message;

    [Fact]
    public void Inconsistent_or_hostile_adapters_are_typed_errors()
    {
        LopaAdapter good = GeneratorTests.Random(GeneratorTests.Config(Composition.Lopa), 1);
        string cfg = good.Config.ToJson();
        byte[] weights;
        {
            string d = TempDir.Create(); good.SaveDirectory(d); weights = File.ReadAllBytes(Path.Combine(d,
            LopaAdapter.WeightsFile));
        }

        Assert.Contains("shape", Expect(() => LopaAdapter.FromParts(cfg.Replace("\"token_dim\": 64",
            "\"token_dim\": 65"), weights, "w")));
        Assert.Contains("rank", Expect(() => LopaAdapter.FromParts(cfg.Replace("\"rank\": 4", "\"rank\": 0"), weights,
            "w")));
        Assert.Contains("num_virtual_tokens", Expect(() =>
            LopaAdapter.FromParts(cfg.Replace("\"num_virtual_tokens\": 10", "\"num_virtual_tokens\": 100000"), weights,
            "w")));
        Assert.Contains("must be an integer", Expect(() => LopaAdapter.FromParts(cfg.Replace("\"rank\": 4",
            "\"rank\": \"four\""), weights, "w")));
        Assert.Contains("composition", Expect(() => LopaAdapter.FromParts(cfg.Replace("\"lopa\"", "\"magic\""),
            weights, "w")));
        Assert.Contains("peft_type", Expect(() => LopaAdapter.FromParts(cfg.Replace("\"LOPA\"", "\"LORA\""), weights,
            "w")));
        Assert.Contains("not valid JSON", Expect(() => LopaAdapter.FromParts("{", weights, "w")));
        Assert.Contains("encoder", Expect(() => LopaAdapter.FromParts(cfg.Replace("\"encoder\": \"minilm\"",
            "\"encoder\": null"), weights, "w")));

        // Non-finite weights, a missing tensor, an extra tensor.
        var nan = (float[])good.PromptEmbeddings!.Clone(); nan[5] = float.NaN;
        var w = new SafeTensorsWriter().Add("prompt_embeddings", Tensor.FromArray(nan, 10, 64));
        AddHeads(w, good);
        Assert.Contains("NaN", Expect(() => LopaAdapter.FromParts(cfg, w.ToArray(), "w")));
        var missing = new SafeTensorsWriter().Add("prompt_embeddings", Tensor.FromArray(good.PromptEmbeddings!, 10,
            64));
        Assert.Contains("missing", Expect(() => LopaAdapter.FromParts(cfg, missing.ToArray(), "w")));
        var extra = new SafeTensorsWriter().Add("prompt_embeddings", Tensor.FromArray(good.PromptEmbeddings!, 10,
            64)).Add("lora_A", Tensor.Zeros(2, 2));
        AddHeads(extra, good);
        Assert.Contains("not used", Expect(() => LopaAdapter.FromParts(cfg, extra.ToArray(), "w")));
        // Truncated bytes and a single file without its config.
        Assert.Throws<AdapterException>(() => LopaAdapter.FromParts(cfg, weights[..(weights.Length / 2)], "w"));
        Assert.Contains("adapter_config", Expect(() => LopaAdapter.FromSingleFile(weights, "w")));
        Assert.Contains("no such adapter", Expect(() => LopaAdapter.Load("/nonexistent/adapter")));
    }

    private static void AddHeads(SafeTensorsWriter w, LopaAdapter a)
    {
        foreach (var (head, dense, output) in new[] { (a.U!, "row_dense", "row_out_proj"), (a.V!, "col_dense",
            "col_out_proj") })
        {
            w.Add(dense + ".weight", Tensor.FromArray(head.DenseWeight, head.Hidden, head.In)).Add(dense + ".bias",
                Tensor.FromArray(head.DenseBias!, head.Hidden));
            w.Add(output + ".weight", Tensor.FromArray(head.OutWeight, head.Out, head.Hidden)).Add(output + ".bias",
                Tensor.FromArray(head.OutBias!, head.Out));
        }
    }

    [Fact]
    public void The_loader_survives_thousands_of_mutated_files()
    {
        byte[] valid = GeneratorTests.Random(GeneratorTests.Config(Composition.Lopa, d: 16, h: 8), 2).ToSingleFile();
        LopaAdapter.FromSingleFile(valid, "seed");
        var rng = new Random(77);
        int rejected = 0;
        for (int i = 0; i < 3000; i++)
        {
            byte[] b = (byte[])valid.Clone();
            switch (rng.Next(3))
            {
                case 0:
                    for (int k = 0,
                    n = 1 + rng.Next(6); k < n; k++)
                    {
                        b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                    }

                    break;
                case 1: b = b[..rng.Next(b.Length)]; break;
                default:
                    int at = rng.Next(Math.Min(b.Length,
                    600)); b[at] = (byte)rng.Next(256); break; // header and config region
            }
            try { LopaAdapter.FromSingleFile(b, "mutant"); }
            catch (AdapterException) { rejected++; }
            catch (Exception e) { Assert.Fail($"mutant {i} escaped as {e.GetType().Name}: {e.Message}"); }
        }
        Assert.True(rejected > 300, $"only {rejected} mutants rejected");
    }

    [Fact]
    public void Generation_defaults_round_trip_through_the_config_and_bad_ones_are_named()
    {
        AdapterConfig config = GeneratorTests.Config(Composition.Lopa) with
        {
            Defaults = new GenerationDefaults { Temperature = 0, TopP = 0.5, MaxTokens = 4, Stop = ["\n", "."] },
        };
        AdapterConfig back = AdapterConfig.Parse(config.ToJson());
        Assert.Equal(0, back.Defaults!.Temperature);
        Assert.Equal(0.5, back.Defaults.TopP);
        Assert.Equal(4, back.Defaults.MaxTokens);
        Assert.Equal(new[] { "\n", "." }, back.Defaults.Stop);
        Assert.Null(AdapterConfig.Parse(GeneratorTests.Config(Composition.Lopa).ToJson()).Defaults);

        var body = new System.Text.Json.Nodes.JsonObject { ["temperature"] = 1.2, ["max_completion_tokens"] = 7 };
        back.Defaults.ApplyTo(body);
        Assert.Equal(1.2, (double)body["temperature"]!);
        Assert.Null(body["max_tokens"]);
        Assert.Equal(0.5, (double)body["top_p"]!);
        Assert.Equal(2, body["stop"]!.AsArray().Count);

        foreach (var (bad, named) in new[]
        {
            ("[]", "must be an object"), ("{\"temperature\": 3}", "'temperature' = 3 is outside [0, 2]"),
            ("{\"top_p\": 0}", "'top_p' = 0 is outside (0, 1]"), ("{\"max_tokens\": 2.5}", "'max_tokens'"),
            ("{\"stop\": []}", "'stop' holds 1 to 4"), ("{\"stop\": [\"\"]}", "non-empty"),
            ("{\"seed\": 1}", "'seed' is not a generation setting"), ("{\"temperature\": \"0\"}", "a number"),
        })
        {
            var o = System.Text.Json.Nodes.JsonNode.Parse(config.ToJson())!.AsObject();
            o[GenerationDefaults.Key] = System.Text.Json.Nodes.JsonNode.Parse(bad);
            var e = Assert.Throws<AdapterException>(() => AdapterConfig.Parse(o.ToJsonString()));
            Assert.Contains(named, e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_prompt_example_round_trips_and_bad_ones_are_refused()
    {
        AdapterConfig config = GeneratorTests.Config(Composition.Lopa) with
        {
            PromptExample = "a fine film.\nSentiment:",
        };
        Assert.Equal("a fine film.\nSentiment:", AdapterConfig.Parse(config.ToJson()).PromptExample);
        Assert.Null(AdapterConfig.Parse(GeneratorTests.Config(Composition.Lopa).ToJson()).PromptExample);
        foreach (string bad in new[] { "", "bell\u0007", new string('x', AdapterConfig.MaxPromptExample + 1) })
        {
            var o = System.Text.Json.Nodes.JsonNode.Parse(config.ToJson())!.AsObject();
            o[AdapterConfig.PromptExampleKey] = bad;
            var e = Assert.Throws<AdapterException>(() => AdapterConfig.Parse(o.ToJsonString()));
            Assert.Contains(AdapterConfig.PromptExampleKey, e.Message, StringComparison.Ordinal);
        }
    }
}
