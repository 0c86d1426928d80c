using System.Text;
using LoPAProxy.Engine.Formats.Llama2c;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Engine.Tests.Tokenizers;

public class SentencePieceBpeTokenizerTests
{
    /// <summary>run.c's encode(), transcribed literally: rescans every pair after every merge.</summary>
    private static List<int> RunCEncode(Llama2cTokenizerFile f, string text, bool bos)
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = f.Pieces.Length - 1; i >= 0; i--) vocab[Encoding.Latin1.GetString(f.Pieces[i])] = i;
        int Lookup(string s) => vocab.TryGetValue(s, out int id) ? id : -1;
        var tokens = new List<int>();
        if (bos) tokens.Add(1);
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        if (bytes.Length > 0) tokens.Add(Lookup(" "));
        var buf = new List<byte>();
        for (int i = 0; i < bytes.Length; i++)
        {
            if ((bytes[i] & 0xC0) != 0x80) buf.Clear();
            buf.Add(bytes[i]);
            if (i + 1 < bytes.Length && (bytes[i + 1] & 0xC0) == 0x80 && buf.Count < 4) continue;
            int id = Lookup(Encoding.Latin1.GetString(buf.ToArray()));
            if (id != -1) tokens.Add(id);
            else foreach (byte b in buf) tokens.Add(b + 3);
            buf.Clear();
        }
        while (true)
        {
            float best = -1e10f; int bestId = -1, bestIdx = -1;
            for (int i = 0; i < tokens.Count - 1; i++)
            {
                int id = Lookup(Encoding.Latin1.GetString(f.Pieces[tokens[i]]) + Encoding.Latin1.GetString(f.Pieces[tokens[i + 1]]));
                if (id != -1 && f.Scores[id] > best) { best = f.Scores[id]; bestId = id; bestIdx = i; }
            }
            if (bestIdx == -1) break;
            tokens[bestIdx] = bestId;
            tokens.RemoveAt(bestIdx + 1);
        }
        return tokens;
    }

    private static IEnumerable<string> Strings(int count, int seed)
    {
        var rng = new Random(seed);
        string[] words = { "Once", "upon", "a", "time", "Lily", "the", "park", "ball", "happy", "didn't", "\"Hello\"", "cat's", "42", "3.14" };
        string[] exotic = { "é", "ñ", "über", "日本語", "😀", "Ωmega", "\t", "\n", "  ", "—", "\u0000", "ß", "가" };
        yield return "";
        yield return " ";
        yield return "Tom had a red kite";
        for (int i = 0; i < count; i++)
        {
            var sb = new StringBuilder();
            for (int w = 0, n = rng.Next(1, 12); w < n; w++)
            {
                if (w > 0 && rng.Next(4) > 0) sb.Append(' ');
                sb.Append(rng.Next(5) == 0 ? exotic[rng.Next(exotic.Length)] : words[rng.Next(words.Length)]);
                if (rng.Next(8) == 0) sb.Append((char)rng.Next(33, 127));
            }
            yield return sb.ToString();
        }
    }

    [Theory]
    [InlineData("stories260K/tok512.bin", 512)]
    [InlineData("llama2-tokenizer/tokenizer.bin", 32000)]
    public void Heap_merging_equals_run_c_encode_and_decoding_round_trips(string file, int vocab)
    {
        var f = Llama2cTokenizerFile.Load(SharedFiles.Path_(("models/" + file).Split('/')), vocab);
        var tok = new SentencePieceBpeTokenizer(f);
        foreach (string s in Strings(vocab == 512 ? 1500 : 400, vocab))
        {
            int[] ours = tok.Encode(s, addBos: true, addEos: false);
            Assert.Equal(RunCEncode(f, s, bos: true), ours);
            string back = ((ITokenizer)tok).Decode(ours);
            Assert.Equal(s, back);
        }
    }

    [Fact]
    public void Known_llama2_encodings()
    {
        var tok = SentencePieceBpeTokenizer.Load(SharedFiles.Path_("models", "llama2-tokenizer", "tokenizer.bin"), 32000);
        // Llama-2's SentencePiece ids for "Hello world" are [1, 15043, 3186]; a newline is byte token <0x0A> = 13.
        Assert.Equal(new[] { 1, 15043, 3186 }, tok.Encode("Hello world", true, false));
        Assert.Equal(new[] { 1, 29871, 13 }, tok.Encode("\n", true, false));
        Assert.Equal(new[] { 1, 15043, 2 }, tok.Encode("Hello", true, true));
        Assert.Empty(tok.Encode("", false, false));
    }
}
