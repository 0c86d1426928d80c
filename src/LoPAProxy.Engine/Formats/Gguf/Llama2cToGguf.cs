using System.Text;
using LoPAProxy.Engine.Formats.Llama2c;

namespace LoPAProxy.Engine.Formats.Gguf;

/// <summary>
/// Converts a llama2.c checkpoint and its tokenizer.bin to a GGUF file llama.cpp loads (architecture "llama", all
/// tensors F32). llama2.c rotates interleaved pairs, which is llama.cpp's normal RoPE for this architecture, so q and
/// k need no permutation (Hugging Face checkpoints do: convert_hf_to_gguf.py permutes them). The tokenizer becomes
/// llama.cpp's SentencePiece vocabulary: llama2.c's export wrote "▁" as a space and BOS/EOS as "\n&lt;s&gt;\n",
/// both undone here; byte pieces &lt;0xXX&gt; get the byte type, so byte fallback works as in SentencePiece.
/// </summary>
public static class Llama2cToGguf
{
    private const int TypeNormal = 1, TypeUnknown = 2, TypeControl = 3, TypeByte = 6;

    /// <param name="chatTemplate">a Jinja chat template to store as tokenizer.chat_template (llama2.c models have
    /// none).</param>
    public static void Convert(string checkpointPath, string tokenizerPath, string outputPath, string? name = null,
        string? chatTemplate = null)
    {
        Llama2cCheckpoint checkpoint = Llama2cCheckpoint.Load(checkpointPath);
        Llama2cConfig c = checkpoint.Config;
        Llama2cTokenizerFile tokenizer = Llama2cTokenizerFile.Load(tokenizerPath, c.VocabSize);
        var writer = new GgufWriter()
            .Add("general.architecture", "llama")
            .Add("general.name", name ?? Path.GetFileNameWithoutExtension(checkpointPath))
            .Add("general.file_type", 0u)
            .Add("llama.context_length", (uint)c.SeqLen)
            .Add("llama.embedding_length", (uint)c.Dim)
            .Add("llama.block_count", (uint)c.Layers)
            .Add("llama.feed_forward_length", (uint)c.HiddenDim)
            .Add("llama.rope.dimension_count", (uint)c.HeadDim)
            .Add("llama.attention.head_count", (uint)c.Heads)
            .Add("llama.attention.head_count_kv", (uint)c.KvHeads)
            .Add("llama.attention.layer_norm_rms_epsilon", 1e-5f)
            .Add("llama.rope.freq_base", 10000f)
            .Add("llama.vocab_size", (uint)c.VocabSize);
        AddTokenizer(writer, tokenizer);
        if (chatTemplate != null) writer.Add("tokenizer.chat_template", chatTemplate);
        AddWeights(writer, checkpoint);
        writer.Write(outputPath);
    }

    /// <summary>A llama2.c tokenizer.bin as llama.cpp's SentencePiece vocabulary (tokenizer.ggml.*).</summary>
    public static void AddTokenizer(GgufWriter writer, Llama2cTokenizerFile tokenizer)
    {
        int count = tokenizer.Pieces.Length;
        var pieces = new string[count];
        var types = new int[count];
        for (int id = 0; id < count; id++)
        {
            string piece = Encoding.UTF8.GetString(tokenizer.Pieces[id]);
            (pieces[id], types[id]) = id switch
            {
                0 => ("<unk>", TypeUnknown),
                1 => ("<s>", TypeControl),
                2 => ("</s>", TypeControl),
                _ when IsBytePiece(piece) => (piece, TypeByte),
                _ => (piece.Replace(' ', '\u2581'), TypeNormal),
            };
        }
        writer.Add("tokenizer.ggml.model", "llama")
            .Add("tokenizer.ggml.tokens", pieces)
            .Add("tokenizer.ggml.scores", tokenizer.Scores)
            .Add("tokenizer.ggml.token_type", types)
            .Add("tokenizer.ggml.unknown_token_id", 0u)
            .Add("tokenizer.ggml.bos_token_id", 1u)
            .Add("tokenizer.ggml.eos_token_id", 2u)
            .Add("tokenizer.ggml.add_bos_token", true)
            .Add("tokenizer.ggml.add_eos_token", false);
    }

    private static bool IsBytePiece(string piece) =>
        piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
        && Uri.IsHexDigit(piece[3]) && Uri.IsHexDigit(piece[4]);

    private static void AddWeights(GgufWriter writer, Llama2cCheckpoint checkpoint)
    {
        Llama2cConfig c = checkpoint.Config;
        Llama2cWeights w = checkpoint.Weights;
        long d = c.Dim, kv = c.KvDim, h = c.HiddenDim, v = c.VocabSize;
        writer.AddTensor("token_embd.weight", w.TokenEmbedding.ToArray(), d, v);
        for (int l = 0; l < c.Layers; l++)
        {
            float[] Layer(Tensor t) => t.Select(0, l).ToArray();
            string p = $"blk.{l}.";
            writer.AddTensor(p + "attn_norm.weight", Layer(w.RmsAttention), d)
                .AddTensor(p + "attn_q.weight", Layer(w.Wq), d, d)
                .AddTensor(p + "attn_k.weight", Layer(w.Wk), d, kv)
                .AddTensor(p + "attn_v.weight", Layer(w.Wv), d, kv)
                .AddTensor(p + "attn_output.weight", Layer(w.Wo), d, d)
                .AddTensor(p + "ffn_norm.weight", Layer(w.RmsFfn), d)
                .AddTensor(p + "ffn_gate.weight", Layer(w.W1), d, h)
                .AddTensor(p + "ffn_down.weight", Layer(w.W2), h, d)
                .AddTensor(p + "ffn_up.weight", Layer(w.W3), d, h);
        }
        writer.AddTensor("output_norm.weight", w.RmsFinal.ToArray(), d);
        if (!c.SharedClassifier) writer.AddTensor("output.weight", w.Classifier.ToArray(), d, v);
    }
}
