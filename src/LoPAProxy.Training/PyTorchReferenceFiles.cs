using System.Text.Json;
using LoPAProxy.Engine.Formats.SafeTensors;
using LoPAProxy.Engine.Networks.Llama;
using LoPAProxy.Engine.Tensors;

namespace LoPAProxy.Training;

/// <summary>
/// Writes what tests/python/lopa_reference.py reads to redo a training step in PyTorch: the frozen FM, the trainable
/// parameters (in <see cref="LopaTrainer.Parameters"/> order), instance vectors, tokenised examples and batches.
/// The golden-step test and the training benchmark both use it, so they check the same computation.
/// </summary>
public static class PyTorchReferenceFiles
{
    public static (string Weights, string Meta) Write(string directory, LlamaModel fm, LopaTrainer trainer,
        float[]? x, int encoderDim, IReadOnlyList<TokenizedExample> examples, IReadOnlyList<int[]> batches)
    {
        LlamaConfig c = fm.Config;
        TrainingOptions o = trainer.Options;
        float[][] parameters = trainer.ParameterValues();
        var w = new SafeTensorsWriter();
        void Add(string name, float[] v, params int[] shape) => w.Add(name, Tensor.FromArray(v, shape));
        Add("fm.emb", fm.TokenEmbedding, c.VocabSize, c.Dim);
        Add("fm.cls", fm.Classifier, c.VocabSize, c.Dim);
        Add("fm.final_norm", fm.FinalNorm, c.Dim);
        for (int l = 0; l < c.Layers; l++)
        {
            LlamaLayer L = fm.Layers[l];
            Add($"fm.l{l}.attn_norm", L.AttentionNorm, c.Dim); Add($"fm.l{l}.ffn_norm", L.FfnNorm, c.Dim);
            Add($"fm.l{l}.wq", L.Wq, c.QDim, c.Dim); Add($"fm.l{l}.wk", L.Wk, c.KvDim, c.Dim); Add($"fm.l{l}.wv", L.Wv, c.KvDim, c.Dim);
            Add($"fm.l{l}.wo", L.Wo, c.Dim, c.QDim); Add($"fm.l{l}.w1", L.W1, c.HiddenDim, c.Dim); Add($"fm.l{l}.w2", L.W2, c.Dim, c.HiddenDim);
            Add($"fm.l{l}.w3", L.W3, c.HiddenDim, c.Dim);
        }
        for (int i = 0; i < parameters.Length; i++) Add($"param.{i}", parameters[i], parameters[i].Length);
        if (x != null) Add("x", x, x.Length / encoderDim, encoderDim);
        string weights = Path.Combine(directory, "reference.safetensors"), meta = Path.Combine(directory, "reference.json");
        w.Save(weights);
        File.WriteAllText(meta, JsonSerializer.Serialize(new
        {
            method = TrainingMethods.Name(o.Method), n_params = parameters.Length,
            cfg = new
            {
                dim = c.Dim, layers = c.Layers, heads = c.Heads, kv_heads = c.KvHeads, head_dim = c.HeadDim,
                eps = c.NormEps, theta = c.RopeTheta,
                m = o.VirtualTokens, r = o.Rank, head_hidden = o.HiddenSize, h = encoderDim,
                lora_scale = o.LoraAlpha / o.Rank
            },
            examples = examples.Select(t => new { ids = t.Ids, prompt_len = t.PromptLength }),
            batches,
        }));
        return (weights, meta);
    }
}
