using System.Collections.Concurrent;
using System.Text;
using LoPAProxy.Engine.Formats;
using LoPAProxy.Engine.Formats.Embeddings;
using LoPAProxy.Engine.Formats.Gguf;
using LoPAProxy.Engine.Formats.HuggingFace;
using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Formats.SafeTensors;
using LoPAProxy.Engine.Tensors;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Core.FoundationModels;

/// <summary>
/// What the proxy needs of a foundation model without running it: its tokenizer, its input-embedding table
/// [vocab, dim] and its context length. Read from a GGUF file (token_embd.weight in F32/F16/BF16/Q8_0/Q4_0; a
/// SentencePiece vocabulary from its metadata, a byte-level BPE one from the tokenizer.json beside it), a llama2.c
/// checkpoint (tokenizer.bin beside it) or a Hugging Face directory (model.embed_tokens.weight from
/// model.safetensors in F32/F16/BF16; tokenizer.json). The table stays in its file, memory-mapped and converted a
/// row at a time (<see cref="MappedEmbeddingTable"/>); the layers are never loaded.
/// </summary>
public sealed record FoundationModelVocabulary(ITokenizer Tokenizer, IEmbeddingTable Table, int ContextLength)
{
    public int Dim => Table.Dim;
    public int VocabSize => Table.VocabSize;

    private static readonly ConcurrentDictionary<(string Path, DateTime Written), FoundationModelVocabulary> Loaded =
        new();

    /// <summary>
    /// The model at <paramref name="path"/>, loaded once per process while its file is unchanged: a route's model and
    /// the fm-mean encoder reading the same file share one tokenizer and one mapping (a 128k vocabulary's pieces
    /// are ~20 MiB of heap).
    /// </summary>
    public static FoundationModelVocabulary Load(string path)
    {
        string full = Path.GetFullPath(path);
        DateTime written = Directory.Exists(full)
            ? Directory.GetLastWriteTimeUtc(full)
            : File.GetLastWriteTimeUtc(full);
        if (Loaded.TryGetValue((full, written), out FoundationModelVocabulary? loaded)) return loaded;
        // Loaded outside the dictionary's lock: a failure is thrown to this caller and not remembered.
        return Loaded.GetOrAdd((full, written), LoadUncached(full));
    }

    private static FoundationModelVocabulary LoadUncached(string path)
    {
        if (Directory.Exists(path)) return FromHuggingFace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"foundation model not found: {path}");
        return GgufFile.HasMagic(path) ? FromGguf(path) : FromLlama2c(path);
    }

    private static FoundationModelVocabulary FromLlama2c(string path)
    {
        var (config, _) = Llama2cCheckpoint.ReadHeader(path);
        ITokenizer tokenizer = TokenizerFiles.ForModel(path, config.VocabSize);
        IEmbeddingTable table = MappedEmbeddingTable.Open(path, Llama2cCheckpoint.EmbeddingOffset, GgmlType.F32,
            config.VocabSize, config.Dim);
        return new FoundationModelVocabulary(tokenizer, table, config.SeqLen);
    }

    private static FoundationModelVocabulary FromHuggingFace(string directory)
    {
        HfConfig config = HfConfig.Load(Path.Combine(directory, "config.json"));
        string weights = Path.Combine(directory, "model.safetensors");
        long offset;
        GgmlType type;
        using (var file = SafeTensorsFile.Open(weights))
        {
            SafeTensorInfo info = file.Info("model.embed_tokens.weight");
            if (info.Shape.Length != 2 || info.Shape[0] != config.VocabSize || info.Shape[1] != config.HiddenSize)
            {
                throw new TensorFileException(directory, $"model.embed_tokens.weight does not hold " +
                    $"[{config.VocabSize}, {config.HiddenSize}]");
            }
            type = info.DType switch
            {
                DType.F32 => GgmlType.F32,
                DType.F16 => GgmlType.F16,
                DType.BF16 => GgmlType.BF16,
                _ => throw new TensorFileException(directory, $"model.embed_tokens.weight is {info.DType}"),
            };
            offset = file.DataStart + info.Offset;
        }
        ITokenizer tokenizer = TokenizerFiles.ForModel(directory, config.VocabSize);
        IEmbeddingTable table = MappedEmbeddingTable.Open(weights, offset, type, config.VocabSize, config.HiddenSize);
        return new FoundationModelVocabulary(tokenizer, table, config.MaxPositionEmbeddings ?? 2048);
    }

    private static FoundationModelVocabulary FromGguf(string path)
    {
        GgufFile gguf = GgufFile.Open(path);
        string arch = gguf.GetString("general.architecture")
            ?? throw new TensorFileException(path, "no general.architecture");
        GgufTensorInfo embedding = gguf.Find("token_embd.weight")
            ?? throw new TensorFileException(path, "no token_embd.weight tensor");
        if (embedding.Shape.Length != 2) throw new TensorFileException(path, "token_embd.weight is not a matrix");
        int dim = (int)embedding.Shape[0], vocab = (int)embedding.Shape[1];
        int context = (int)(gguf.GetInteger(arch + ".context_length") ?? 2048);
        ITokenizer tokenizer = GgufTokenizer(gguf, vocab);
        IEmbeddingTable table = MappedEmbeddingTable.Open(path, gguf.DataStart + embedding.Offset, embedding.Type,
            vocab, dim);
        return new FoundationModelVocabulary(tokenizer, table, context);
    }

    /// <summary>
    /// A SentencePiece ("llama") vocabulary becomes run.c's tokenizer over the GGUF's pieces and scores ("▁" back to
    /// a space; control and unknown pieces become the byte 0xFF, which no UTF-8 text or vocabulary piece contains, so
    /// text never merges into them — llama.cpp with parse_special off behaves the same). For byte-level BPE ("gpt2")
    /// vocabularies the pre-tokenizer is only named in the GGUF (tokenizer.ggml.pre), so HF's tokenizer.json beside
    /// the file is required.
    /// </summary>
    private static ITokenizer GgufTokenizer(GgufFile gguf, int vocab)
    {
        string model = gguf.GetString("tokenizer.ggml.model") ?? "";
        if (model != "llama")
        {
            string beside = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(gguf.Path))!, "tokenizer.json");
            if (File.Exists(beside)) return HfBpeTokenizer.Load(beside);
            throw new TensorFileException(gguf.Path, $"tokenizer.ggml.model '{model}': put the model's Hugging Face " +
                "tokenizer.json beside the GGUF file (or use a dialect that sends only the soft prompt, vllm-chat)");
        }
        string[] tokens = gguf.GetArray<string>("tokenizer.ggml.tokens")
            ?? throw new TensorFileException(gguf.Path, "no tokenizer.ggml.tokens");
        float[] scores = gguf.GetArray<float>("tokenizer.ggml.scores") ?? new float[tokens.Length];
        int[] types = gguf.GetArray<int>("tokenizer.ggml.token_type") ?? new int[tokens.Length];
        if (tokens.Length != vocab || scores.Length != vocab || types.Length != vocab)
        {
            throw new TensorFileException(gguf.Path, $"the vocabulary ({tokens.Length} tokens) does not match " +
                $"token_embd.weight ({vocab} rows)");
        }

        var pieces = new byte[vocab][];
        for (int i = 0; i < vocab; i++)
        {
            bool control = types[i] is 2 or 3; // unknown, control
            pieces[i] = control ? new byte[] { 0xFF } : Encoding.UTF8.GetBytes(tokens[i].Replace('\u2581', ' '));
        }
        int longest = Math.Max(1, pieces.Max(p => p.Length));
        return new SentencePieceBpeTokenizer(new Llama2cTokenizerFile(longest, pieces, scores));
    }
}
