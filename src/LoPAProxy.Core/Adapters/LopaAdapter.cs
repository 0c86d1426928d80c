using System.Numerics.Tensors;
using LoPAProxy.Engine.Formats;
using LoPAProxy.Engine.Formats.SafeTensors;
using LoPAProxy.Engine.Tensors;

namespace LoPAProxy.Core.Adapters;

/// <summary>Linear → tanh → Linear, PyTorch layout ([out, in] weights); biases may be absent (use_bias=False).</summary>
public sealed record MlpHead(int In, int Hidden, int Out, float[] DenseWeight, float[]? DenseBias, float[] OutWeight, float[]? OutBias);

/// <summary>
/// A loaded, validated adapter: config + Z_S (prompt_embeddings [m, d]) + the heads its composition needs.
/// Tensor names follow the paper's reference code: row_dense/row_out_proj (u), col_dense/col_out_proj (v),
/// layer_down_project/layer_up_project (IDPG).
/// </summary>
public sealed class LopaAdapter
{
    public const string ConfigFile = "adapter_config.json", WeightsFile = "adapter_model.safetensors", MetadataKey = "adapter_config";
    public const long MaxFileBytes = 1L << 30;

    public AdapterConfig Config { get; }
    public float[]? PromptEmbeddings { get; }   // [m, d]
    public MlpHead? U { get; }                  // h → H → m·r
    public MlpHead? V { get; }                  // h → H → d·r
    public MlpHead? Idpg { get; }               // h → H → m·d

    public LopaAdapter(AdapterConfig config, float[]? promptEmbeddings, MlpHead? u, MlpHead? v, MlpHead? idpg)
    {
        config.Validate();
        Config = config; PromptEmbeddings = promptEmbeddings; U = u; V = v; Idpg = idpg;
        int m = config.NumVirtualTokens, d = config.TokenDim;
        bool needsZs = config.Composition != Composition.Idpg, needsUv = config.Composition is Composition.Lopa or Composition.LopaAdd;
        if (needsZs && promptEmbeddings?.Length != m * d) throw new AdapterException($"prompt_embeddings must be [{m}, {d}]");
        if (needsUv)
        {
            CheckHead(u, "row (u)", config.EncoderDim, config.HiddenSize, m * config.Rank);
            CheckHead(v, "col (v)", config.EncoderDim, config.HiddenSize, d * config.Rank);
        }
        if (config.Composition == Composition.Idpg) CheckHead(idpg, "idpg", config.EncoderDim, config.HiddenSize, m * d);
        foreach (float[]? t in new[] { promptEmbeddings, u?.DenseWeight, u?.DenseBias, u?.OutWeight, u?.OutBias, v?.DenseWeight, v?.DenseBias, v?.OutWeight, v?.OutBias,
                     idpg?.DenseWeight, idpg?.DenseBias, idpg?.OutWeight, idpg?.OutBias })
        {
            if (t != null && !TensorPrimitives.IsFiniteAll<float>(t)) throw new AdapterException("adapter weights contain NaN or infinite values");
        }
    }

    private static void CheckHead(MlpHead? head, string name, int h, int hidden, int output)
    {
        if (head is null) throw new AdapterException($"the {name} head is missing");
        if (head.In != h || head.Hidden != hidden || head.Out != output) throw new AdapterException($"the {name} head is {head.In}→{head.Hidden}→{head.Out}, config needs {h}→{hidden}→{output}");
    }

    // ---- reading ------------------------------------------------------------------------------

    /// <summary>A directory (adapter_config.json + adapter_model.safetensors) or one .safetensors file carrying its config in __metadata__.</summary>
    public static LopaAdapter Load(string path)
    {
        if (Directory.Exists(path))
        {
            string cfg = Path.Combine(path, ConfigFile), weights = Path.Combine(path, WeightsFile);
            if (!File.Exists(cfg)) throw new AdapterException($"{path}: no {ConfigFile}");
            if (!File.Exists(weights)) throw new AdapterException($"{path}: no {WeightsFile}");
            if (new FileInfo(cfg).Length > 1 << 20) throw new AdapterException($"{cfg}: over 1 MiB");
            return FromParts(File.ReadAllText(cfg), ReadLimited(weights), weights);
        }
        if (File.Exists(path)) return FromSingleFile(ReadLimited(path), path);
        throw new AdapterException($"{path}: no such adapter");
    }

    private static byte[] ReadLimited(string path)
    {
        long size = new FileInfo(path).Length;
        if (size > MaxFileBytes) throw new AdapterException($"{path}: {size} bytes is over the {MaxFileBytes}-byte limit");
        return File.ReadAllBytes(path);
    }

    public static LopaAdapter FromSingleFile(byte[] safetensors, string name)
    {
        try
        {
            using var file = SafeTensorsFile.FromBytes(safetensors, name);
            if (!file.Metadata.TryGetValue(MetadataKey, out string? json)) throw new AdapterException($"{name}: no '{MetadataKey}' in the safetensors __metadata__");
            return FromFile(AdapterConfig.Parse(json), file);
        }
        catch (TensorFileException e) { throw new AdapterException(e.Message, e); }
    }

    public static LopaAdapter FromParts(string configJson, byte[] safetensors, string name)
    {
        AdapterConfig config = AdapterConfig.Parse(configJson);
        try
        {
            using var file = SafeTensorsFile.FromBytes(safetensors, name);
            return FromFile(config, file);
        }
        catch (TensorFileException e) { throw new AdapterException(e.Message, e); }
    }

    private static LopaAdapter FromFile(AdapterConfig c, SafeTensorsFile file)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        float[]? Get(string name, bool required, params int[] shape)
        {
            if (!file.Contains(name))
                return required ? throw new AdapterException($"{file.FileName}: tensor '{name}' is missing") : null;
            used.Add(name);
            SafeTensorInfo info = file.Info(name);
            if (!info.DType.IsFloat()) throw new AdapterException($"{file.FileName}: '{name}' is {info.DType}, not a float type");
            if (!info.IntShape.SequenceEqual(shape))
                throw new AdapterException($"{file.FileName}: '{name}' has shape [{string.Join(", ", info.Shape)}], the config needs [{string.Join(", ", shape)}]");
            return file.ReadFloat32(name).Span.ToArray();
        }
        MlpHead Head(string dense, string output, int outDim) => new(c.EncoderDim, c.HiddenSize, outDim,
            Get(dense + ".weight", true, c.HiddenSize, c.EncoderDim)!, Get(dense + ".bias", false, c.HiddenSize),
            Get(output + ".weight", true, outDim, c.HiddenSize)!, Get(output + ".bias", false, outDim));
        int m = c.NumVirtualTokens, d = c.TokenDim;
        float[]? zs = c.Composition == Composition.Idpg ? null : Get("prompt_embeddings", true, m, d);
        MlpHead? u = null, v = null, idpg = null;
        if (c.Composition is Composition.Lopa or Composition.LopaAdd)
        {
            u = Head("row_dense", "row_out_proj", m * c.Rank);
            v = Head("col_dense", "col_out_proj", d * c.Rank);
        }
        if (c.Composition == Composition.Idpg) idpg = Head("layer_down_project", "layer_up_project", m * d);
        string[] extra = file.Tensors.Select(t => t.Name).Where(n => !used.Contains(n)).ToArray();
        if (extra.Length > 0) throw new AdapterException($"{file.FileName}: tensors not used by a '{AdapterConfig.CompositionName(c.Composition)}' adapter: {string.Join(", ", extra.Take(5))}");
        return new LopaAdapter(c, zs, u, v, idpg);
    }

    // ---- writing ------------------------------------------------------------------------------

    private SafeTensorsWriter Writer()
    {
        var w = new SafeTensorsWriter().Metadata("format", "pt");
        int m = Config.NumVirtualTokens, d = Config.TokenDim;
        if (PromptEmbeddings != null) w.Add("prompt_embeddings", Tensor.FromArray(PromptEmbeddings, m, d));
        void Head(MlpHead? head, string dense, string output)
        {
            if (head is null) return;
            w.Add(dense + ".weight", Tensor.FromArray(head.DenseWeight, head.Hidden, head.In));
            if (head.DenseBias != null) w.Add(dense + ".bias", Tensor.FromArray(head.DenseBias, head.Hidden));
            w.Add(output + ".weight", Tensor.FromArray(head.OutWeight, head.Out, head.Hidden));
            if (head.OutBias != null) w.Add(output + ".bias", Tensor.FromArray(head.OutBias, head.Out));
        }
        Head(U, "row_dense", "row_out_proj");
        Head(V, "col_dense", "col_out_proj");
        Head(Idpg, "layer_down_project", "layer_up_project");
        return w;
    }

    /// <summary>The same weights under another config of the same shape (descriptive keys such as the prompt
    /// example).</summary>
    public LopaAdapter WithConfig(AdapterConfig config) => new(config, PromptEmbeddings, U, V, Idpg);

    /// <summary>adapter_config.json + adapter_model.safetensors in <paramref name="directory"/>.</summary>
    public void SaveDirectory(string directory)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, ConfigFile), Config.ToJson());
        Writer().Save(Path.Combine(directory, WeightsFile));
    }

    /// <summary>One safetensors file with the config in __metadata__["adapter_config"].</summary>
    public byte[] ToSingleFile() => Writer().Metadata(MetadataKey, Config.ToJson()).ToArray();

    /// <summary>A new adapter initialised as the paper does: Z_S ~ N(0, 1), head weights ~ N(0, 0.02), output biases 0 (dense biases 0 too).</summary>
    public static LopaAdapter CreateRandom(AdapterConfig c, int seed)
    {
        var rng = new Random(seed);
        float[] Normal(int n, double std)
        {
            var a = new float[n];
            for (int i = 0; i < n; i++)
            {
                double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
                a[i] = (float)(std * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
            }
            return a;
        }
        MlpHead Head(int outDim) => new(c.EncoderDim, c.HiddenSize, outDim, Normal(c.HiddenSize * c.EncoderDim, 0.02), new float[c.HiddenSize],
            Normal(outDim * c.HiddenSize, 0.02), new float[outDim]);
        int m = c.NumVirtualTokens, d = c.TokenDim;
        return c.Composition switch
        {
            Composition.PromptTuning => new LopaAdapter(c, Normal(m * d, 1.0), null, null, null),
            Composition.Idpg => new LopaAdapter(c, null, null, null, Head(m * d)),
            _ => new LopaAdapter(c, Normal(m * d, 1.0), Head(m * c.Rank), Head(d * c.Rank), null),
        };
    }
}
