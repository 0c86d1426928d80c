using System.Buffers.Binary;
using System.Text;
using LoPAProxy.Engine.Formats;
using LoPAProxy.Engine.Formats.HuggingFace;
using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Engine.Tests.Formats;

public class Llama2cTests
{
    private static string Stories => SharedFiles.Path_("models", "stories260K", "stories260K.bin");

    [Fact]
    public void Reads_the_real_stories260K_checkpoint()
    {
        var ckpt = Llama2cCheckpoint.Load(Stories);
        Assert.Equal(new Llama2cConfig(64, 172, 5, 8, 4, 512, 512, true), ckpt.Config);
        Assert.Equal(new[] { 512, 64 }, ckpt.Weights.TokenEmbedding.Shape.ToArray());
        Assert.Equal(new[] { 5, 32, 64 }, ckpt.Weights.Wk.Shape.ToArray());
        Assert.Equal(new[] { 5, 64, 172 }, ckpt.Weights.W2.Shape.ToArray());
        Assert.Same(ckpt.Weights.TokenEmbedding, ckpt.Weights.Classifier);
        Assert.All(ckpt.Weights.W3.ToArray(), v => Assert.True(float.IsFinite(v)));
        // The last float before the legacy freq tables is rms_final; byte-level check against the file.
        byte[] raw = File.ReadAllBytes(Stories);
        long rmsFinalAt = raw.Length - 4L * (512 * 8 / 2 * 2) - 4 * 64;
        Assert.Equal(BinaryPrimitives.ReadSingleLittleEndian(raw.AsSpan((int)rmsFinalAt)), ckpt.Weights.RmsFinal.Span[0]);
        Assert.Equal(ckpt.Config, Llama2cCheckpoint.Load(raw, "mem").Config);
    }

    [Fact]
    public void Reads_both_real_tokenizer_files()
    {
        var small = Llama2cTokenizerFile.Load(SharedFiles.Path_("models", "stories260K", "tok512.bin"), 512);
        Assert.Equal(512, small.Pieces.Length);
        Assert.Equal("<unk>", Encoding.UTF8.GetString(small.Pieces[0]));
        var big = Llama2cTokenizerFile.Load(SharedFiles.Path_("models", "llama2-tokenizer", "tokenizer.bin"));
        Assert.Equal(32000, big.Pieces.Length);
        Assert.Equal(27, big.MaxTokenLength);
        Assert.Equal("<0x0A>", Encoding.UTF8.GetString(big.Pieces[3 + 10]));
    }

    [Fact]
    public void Bad_headers_and_sizes_are_typed_errors_checked_before_allocation()
    {
        byte[] raw = File.ReadAllBytes(Stories);
        var ex = Assert.Throws<TensorFileException>(() => Llama2cCheckpoint.Load(raw[..(raw.Length - 4)], "short.bin"));
        Assert.Contains("needs exactly", ex.Message);
        byte[] huge = (byte[])raw.Clone();
        BinaryPrimitives.WriteInt32LittleEndian(huge.AsSpan(0), 60000); // dim: would be gigabytes
        Assert.Contains("needs exactly", Assert.Throws<TensorFileException>(() => Llama2cCheckpoint.Load(huge, "huge.bin")).Message);
        byte[] badHeads = (byte[])raw.Clone();
        BinaryPrimitives.WriteInt32LittleEndian(badHeads.AsSpan(12), 7);
        Assert.Contains("multiple", Assert.Throws<TensorFileException>(() => Llama2cCheckpoint.Load(badHeads, "h.bin")).Message);
        byte[] negative = (byte[])raw.Clone();
        BinaryPrimitives.WriteInt32LittleEndian(negative.AsSpan(8), -1);
        Assert.Contains("n_layers", Assert.Throws<TensorFileException>(() => Llama2cCheckpoint.Load(negative, "n.bin")).Message);
        Assert.Throws<TensorFileException>(() => Llama2cCheckpoint.Load(new byte[10], "tiny.bin"));
        // Tokenizer: a length past the end, a length over max_token_length.
        byte[] tok = File.ReadAllBytes(SharedFiles.Path_("models", "stories260K", "tok512.bin"));
        Assert.Throws<TensorFileException>(() => Llama2cTokenizerFile.Parse(tok.AsSpan(0, tok.Length - 3).ToArray(),
            "t.bin"));
        byte[] longPiece = (byte[])tok.Clone();
        BinaryPrimitives.WriteInt32LittleEndian(longPiece.AsSpan(8), 1000);
        Assert.Contains("outside [0, 7]", Assert.Throws<TensorFileException>(() => Llama2cTokenizerFile.Parse(longPiece, "t.bin")).Message);
    }

    [Fact]
    public void HF_config_is_parsed_and_type_checked()
    {
        var c = HfConfig.Parse("""
            {"model_type":"llama","hidden_size":288,"num_hidden_layers":6,"num_attention_heads":6,"num_key_value_heads":2,
             "intermediate_size":768,"vocab_size":32000,"rms_norm_eps":1e-5,"rope_theta":500000.0,"tie_word_embeddings":true,
             "max_position_embeddings":256,"torch_dtype":"float32","hidden_act":"silu"}
            """, "config.json");
        Assert.Equal((288, 2, 500000.0, true, "silu"), (c.HiddenSize, c.NumKeyValueHeads, c.RopeTheta, c.TieWordEmbeddings, c.HiddenAct));
        var bert = HfConfig.Parse("""{"model_type":"bert","hidden_size":32,"num_hidden_layers":2,"num_attention_heads":4,"intermediate_size":64,"vocab_size":100,"layer_norm_eps":1e-12,"type_vocab_size":2}""", "b.json");
        Assert.Equal((4, 10000.0, 2), (bert.NumKeyValueHeads, bert.RopeTheta, bert.TypeVocabSize));
        Assert.Contains("'hidden_size' is not an integer", Assert.Throws<TensorFileException>(() => HfConfig.Parse("""{"model_type":"x","hidden_size":"big"}""", "c")).Message);
        Assert.Contains("missing required integer 'vocab_size'", Assert.Throws<TensorFileException>(() => HfConfig.Parse("""{"model_type":"x","hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":4}""", "c")).Message);
        Assert.Contains("multiple", Assert.Throws<TensorFileException>(() => HfConfig.Parse("""{"model_type":"x","hidden_size":8,"num_hidden_layers":1,"num_attention_heads":3,"intermediate_size":4,"vocab_size":5}""", "c")).Message);
        Assert.Contains("not valid JSON", Assert.Throws<TensorFileException>(() => HfConfig.Parse("{", "c")).Message);
        Assert.Contains("positive", Assert.Throws<TensorFileException>(() => HfConfig.Parse("""{"model_type":"x","hidden_size":-8}""", "c")).Message);
    }
}
