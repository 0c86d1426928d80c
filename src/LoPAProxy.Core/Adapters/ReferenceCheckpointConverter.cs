using LoPAProxy.Engine.Formats;
using LoPAProxy.Engine.Formats.Torch;

namespace LoPAProxy.Core.Adapters;

/// <summary>
/// Converts the paper's reference checkpoints into our format, reading them with the restricted (weights-only)
/// unpickler: PEFT's adapter_model.bin (a state dict holding prompt_embeddings [m, d]) and the generator's .pt
/// state dict (row_dense / row_out_proj / col_dense / col_out_proj, or IDPG's layer_down_project /
/// layer_up_project; any module prefix such as "enc." and the frozen encoder's "base.*" weights are ignored).
/// The composition follows from which heads are present (lopa_add must be asked for: its weights look like LoPA's).
/// </summary>
public static class ReferenceCheckpointConverter
{
    private static readonly string[] HeadNames = { "row_dense", "row_out_proj", "col_dense", "col_out_proj", "layer_down_project", "layer_up_project" };

    public static LopaAdapter Convert(string? peftAdapterBin, string? generatorPt, string? encoder, string? baseModel, bool additive = false, int? numVirtualTokens = null)
    {
        if (peftAdapterBin is null && generatorPt is null) throw new AdapterException("give the PEFT adapter_model.bin, the generator .pt, or both");
        var tensors = new Dictionary<string, (float[] Values, int[] Shape)>(StringComparer.Ordinal);
        void Read(string path, bool heads)
        {
            IReadOnlyList<KeyValuePair<string, TorchTensor>> dict;
            try { dict = TorchFile.LoadStateDict(File.ReadAllBytes(path), path); }
            catch (TensorFileException e) { throw new AdapterException(e.Message, e); }
            foreach (var (key, t) in dict)
            {
                string? name = heads ? HeadKey(key) : key.EndsWith("prompt_embeddings", StringComparison.Ordinal) ? "prompt_embeddings" : null;
                if (name is null) continue;
                if (!tensors.TryAdd(name, (t.Values.ToArray(), t.Values.Shape.ToArray()))) throw new AdapterException($"{path}: '{name}' appears twice");
            }
        }
        if (peftAdapterBin != null) Read(peftAdapterBin, heads: false);
        if (generatorPt != null) Read(generatorPt, heads: true);

        (float[] Values, int[] Shape)? Get(string name) => tensors.TryGetValue(name, out var t) ? t : null;
        var zs = Get("prompt_embeddings");
        bool lopa = Get("row_dense.weight") != null, idpg = Get("layer_down_project.weight") != null;
        if (lopa && idpg) throw new AdapterException("the checkpoint has both LoPA and IDPG heads");
        Composition composition = idpg ? Composition.Idpg : lopa ? (additive ? Composition.LopaAdd : Composition.Lopa) : Composition.PromptTuning;
        if (composition != Composition.Idpg && zs is null) throw new AdapterException("no prompt_embeddings found (it lives in PEFT's adapter_model.bin)");

        int m, d, r = 0, hidden = 0, h = 0;
        MlpHead? Head(string dense, string output)
        {
            if (Get(dense + ".weight") is not { } dw || Get(output + ".weight") is not { } ow) return null;
            if (dw.Shape.Length != 2 || ow.Shape.Length != 2) throw new AdapterException($"{dense}/{output} weights must be matrices");
            return new MlpHead(dw.Shape[1], dw.Shape[0], ow.Shape[0], dw.Values, Get(dense + ".bias")?.Values, ow.Values, Get(output + ".bias")?.Values);
        }
        MlpHead? u = null, v = null, idpgHead = null;
        if (composition == Composition.Idpg)
        {
            idpgHead = Head("layer_down_project", "layer_up_project") ?? throw new AdapterException("incomplete IDPG head");
            if (zs is { Shape: [var zm, var zd] }) { m = zm; d = zd; }
            else if (numVirtualTokens is > 0 and var nv && idpgHead.Out % nv == 0) { m = nv; d = idpgHead.Out / nv; }
            else
            {
                throw new AdapterException(
                    "an IDPG checkpoint does not say m: pass --m (the number of virtual tokens)");
            }

            hidden = idpgHead.Hidden; h = idpgHead.In;
            zs = null;
        }
        else
        {
            if (zs!.Value.Shape is not [var zm, var zd]) throw new AdapterException("prompt_embeddings must be [m, d]");
            m = zm; d = zd;
            if (composition != Composition.PromptTuning)
            {
                u = Head("row_dense", "row_out_proj") ?? throw new AdapterException("incomplete row (u) head");
                v = Head("col_dense", "col_out_proj") ?? throw new AdapterException("incomplete col (v) head");
                if (u.Out % m != 0) throw new AdapterException($"row_out_proj has {u.Out} outputs, not a multiple of m = {m}");
                r = u.Out / m; hidden = u.Hidden; h = u.In;
            }
        }
        var config = new AdapterConfig
        {
            PeftType = AdapterConfig.LopaType, BaseModel = baseModel, NumVirtualTokens = m, TokenDim = d, Rank = r,
            HiddenSize = hidden, EncoderDim = h, Encoder = composition == Composition.PromptTuning ? null : encoder ?? throw new AdapterException("name the instance encoder the heads were trained with (--encoder)"),
            Composition = composition,
        };
        return new LopaAdapter(config, zs?.Values, u, v, idpgHead);
    }

    private static string? HeadKey(string key)
    {
        foreach (string head in HeadNames)
        {
            int i = key.IndexOf(head + ".", StringComparison.Ordinal);
            if (i >= 0 && (i == 0 || key[i - 1] == '.')) return key[i..];
        }
        return null;
    }
}
