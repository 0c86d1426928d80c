using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace LoPAProxy.Engine.Formats.Llama2c;

/// <summary>llama2.c's 7-int header. A negative vocab size in the file means the classifier is stored separately.</summary>
public sealed record Llama2cConfig(int Dim, int HiddenDim, int Layers, int Heads, int KvHeads, int VocabSize, int SeqLen, bool SharedClassifier)
{
    public int HeadDim => Dim / Heads;
    public int KvDim => KvHeads * HeadDim;
}

/// <summary>
/// Weights of a llama2.c checkpoint (run.c's TransformerWeights), matrices in PyTorch's [out, in] layout.
/// Per-layer tensors carry a leading layer dimension.
/// </summary>
public sealed record Llama2cWeights(
    Tensor TokenEmbedding, // [vocab, dim]
    Tensor RmsAttention,   // [layers, dim]
    Tensor Wq,             // [layers, dim, dim]
    Tensor Wk,             // [layers, kvDim, dim]
    Tensor Wv,             // [layers, kvDim, dim]
    Tensor Wo,             // [layers, dim, dim]
    Tensor RmsFfn,         // [layers, dim]
    Tensor W1,             // [layers, hidden, dim]
    Tensor W2,             // [layers, dim, hidden]
    Tensor W3,             // [layers, hidden, dim]
    Tensor RmsFinal,       // [dim]
    Tensor Classifier);    // [vocab, dim]; the embedding itself when shared

public sealed record Llama2cCheckpoint(Llama2cConfig Config, Llama2cWeights Weights)
{
    /// <summary>The token-embedding table starts right after the 28-byte header, float32 [vocab, dim].</summary>
    public const int EmbeddingOffset = 28;
    private const int HeaderBytes = EmbeddingOffset, MaxDim = 1 << 16, MaxLayers = 1024, MaxVocab = 1 << 20,
        MaxSeq = 1 << 20;

    /// <summary>Reads a checkpoint; the header is checked and the exact file size is required before anything is allocated.</summary>
    public static Llama2cCheckpoint Load(string path)
    {
        long length = new FileInfo(path).Length;
        if (length < HeaderBytes) throw new TensorFileException(path, $"{length} bytes is shorter than the 28-byte llama2.c header");
        using var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        using var view = map.CreateViewStream(0, length, MemoryMappedFileAccess.Read);
        var header = new byte[HeaderBytes];
        view.ReadExactly(header);
        Llama2cConfig config = ParseHeader(header, length, path);
        return new Llama2cCheckpoint(config, ReadWeights(view, config, path));
    }

    /// <summary>Only the header and the token-embedding rows [vocab, dim] (the first tensor), for readers that need
    /// the vocabulary and not the layers.</summary>
    public static (Llama2cConfig Config, float[] Embeddings) ReadTokenEmbedding(string path)
    {
        var (config, stream) = ReadHeader(path, keepOpen: true);
        using (stream)
        {
            var embeddings = new float[(long)config.VocabSize * config.Dim];
            stream!.ReadExactly(MemoryMarshal.AsBytes(embeddings.AsSpan()));
            return (config, embeddings);
        }
    }

    /// <summary>The validated header; with <paramref name="keepOpen"/>, the stream positioned after it.</summary>
    public static (Llama2cConfig Config, Stream? Body) ReadHeader(string path, bool keepOpen = false)
    {
        long length = new FileInfo(path).Length;
        if (length < HeaderBytes)
        {
            throw new TensorFileException(path,
            $"{length} bytes is shorter than the 28-byte llama2.c header");
        }

        var stream = File.OpenRead(path);
        var header = new byte[HeaderBytes];
        stream.ReadExactly(header);
        Llama2cConfig config = ParseHeader(header, length, path);
        if (keepOpen) return (config, stream);
        stream.Dispose();
        return (config, null);
    }

    public static Llama2cCheckpoint Load(byte[] bytes, string name)
    {
        if (bytes.Length < HeaderBytes) throw new TensorFileException(name, $"{bytes.Length} bytes is shorter than the 28-byte llama2.c header");
        Llama2cConfig config = ParseHeader(bytes, bytes.Length, name);
        using var stream = new MemoryStream(bytes, HeaderBytes, bytes.Length - HeaderBytes, false);
        return new Llama2cCheckpoint(config, ReadWeights(stream, config, name));
    }

    /// <summary>Validates the header against sane bounds and the file's exact expected size.</summary>
    public static Llama2cConfig ParseHeader(ReadOnlySpan<byte> header, long fileLength, string file)
    {
        var r = new ByteReader(header, file);
        int dim = r.I32("dim"), hidden = r.I32("hidden_dim"), layers = r.I32("n_layers"), heads = r.I32("n_heads"),
            kvHeads = r.I32("n_kv_heads"), vocab = r.I32("vocab_size"), seqLen = r.I32("seq_len");
        bool shared = vocab > 0;
        vocab = Math.Abs(vocab);
        void Bound(int v, int max, string what) { if (v <= 0 || v > max) throw new TensorFileException(file, $"header {what} = {v} is outside [1, {max}]"); }
        Bound(dim, MaxDim, "dim"); Bound(hidden, 4 * MaxDim, "hidden_dim"); Bound(layers, MaxLayers, "n_layers");
        Bound(heads, dim, "n_heads"); Bound(kvHeads, heads, "n_kv_heads"); Bound(vocab, MaxVocab, "vocab_size"); Bound(seqLen, MaxSeq, "seq_len");
        if (dim % heads != 0) throw r.Error($"dim {dim} is not a multiple of n_heads {heads}");
        if (heads % kvHeads != 0) throw r.Error($"n_heads {heads} is not a multiple of n_kv_heads {kvHeads}");
        int headDim = dim / heads;
        if (headDim % 2 != 0) throw r.Error($"head size {headDim} is odd; rotary embeddings need pairs");
        var config = new Llama2cConfig(dim, hidden, layers, heads, kvHeads, vocab, seqLen, shared);
        long expected = HeaderBytes + 4 * FloatCount(config);
        if (fileLength != expected)
            throw r.Error($"file is {fileLength} bytes; this header needs exactly {expected} ({(shared ? "shared" : "separate")} classifier)");
        return config;
    }

    private static long FloatCount(Llama2cConfig c)
    {
        long d = c.Dim, l = c.Layers, kv = c.KvDim, h = c.HiddenDim, v = c.VocabSize;
        long n = v * d + l * d + l * d * d + 2 * l * d * kv + l * d * d + l * d + 3 * l * d * h + d
            + (long)c.SeqLen * c.HeadDim; // freq_cis_real + freq_cis_imag: seq_len × head_size/2 each (legacy, skipped)
        if (!c.SharedClassifier) n += v * d;
        return n;
    }

    private static Llama2cWeights ReadWeights(Stream s, Llama2cConfig c, string file)
    {
        int d = c.Dim, l = c.Layers, kv = c.KvDim, h = c.HiddenDim, v = c.VocabSize;
        Tensor Read(params int[] shape)
        {
            var t = Tensor.Zeros(shape);
            s.ReadExactly(MemoryMarshal.AsBytes(t.Span));
            if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts");
            return t;
        }
        try
        {
            Tensor emb = Read(v, d), rmsAtt = Read(l, d), wq = Read(l, d, d), wk = Read(l, kv, d), wv = Read(l, kv, d),
                wo = Read(l, d, d), rmsFfn = Read(l, d), w1 = Read(l, h, d), w2 = Read(l, d, h), w3 = Read(l, h, d), rmsFinal = Read(d);
            s.Seek((long)c.SeqLen * c.HeadDim * 4, SeekOrigin.Current);
            Tensor cls = c.SharedClassifier ? emb : Read(v, d);
            return new Llama2cWeights(emb, rmsAtt, wq, wk, wv, wo, rmsFfn, w1, w2, w3, rmsFinal, cls);
        }
        catch (EndOfStreamException e) { throw new TensorFileException(file, "truncated weights", e); }
    }
}
