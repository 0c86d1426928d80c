using System.Text.Json;
using LoPAProxy.Core.Encoders;
using LoPAProxy.Core.Encoders.Onnx;
using LoPAProxy.Engine.Tests.Support;

namespace LoPAProxy.Core.Tests.Encoders;

/// <summary>
/// An ONNX encoder with a byte-level BPE tokenizer.json and last-token pooling (the decoder-style embedders): a small
/// random model exported by real PyTorch (torch.onnx) with the real Llama-3 tokenizer.json; ids against Hugging Face's
/// tokenizers in JS, vectors against the same PyTorch module run on those ids.
/// </summary>
public class OnnxBpeEncoderTests
{
    private const string ExportAndEncode = """
        import json, sys, torch
        vocab, dim = int(sys.argv[2]), 16
        torch.manual_seed(0)
        class Tiny(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = torch.nn.Embedding(vocab, dim)
                self.pos = torch.nn.Embedding(64, dim)
                self.qkv = torch.nn.Linear(dim, 3 * dim)
                self.out = torch.nn.Linear(dim, dim)
            def forward(self, input_ids, attention_mask):
                n = input_ids.shape[1]
                x = self.emb(input_ids) + self.pos(torch.arange(n).unsqueeze(0))
                q, k, v = self.qkv(x).chunk(3, dim=-1)
                scores = q @ k.transpose(1, 2) / dim ** 0.5
                causal = torch.ones(n, n).tril().unsqueeze(0)
                keep = causal * attention_mask.unsqueeze(1).float()
                scores = scores.masked_fill(keep == 0, -1e9)
                return torch.tanh(self.out(torch.softmax(scores, -1) @ v) + x)
        model = Tiny().eval()
        ids = torch.tensor([[1, 2, 3]])
        torch.onnx.export(model, (ids, torch.ones_like(ids)), sys.argv[1] + "/model.onnx", opset_version=14,
            input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                          "last_hidden_state": {0: "batch", 1: "sequence"}})
        out = []
        with torch.no_grad():
            for seq in json.load(open(sys.argv[3])):
                t = torch.tensor([seq])
                h = model(t, torch.ones_like(t))[0, -1].double()
                out.append((h / h.norm()).tolist())
        json.dump(out, open(sys.argv[4], "w"))
        """;

    [Fact]
    public void A_bpe_last_token_encoder_equals_pytorch_and_its_ids_equal_hugging_face()
    {
        string dir = TempDir.Create();
        string llama3 = Path.Combine(Node.Directory, "node_modules", "@lenml", "tokenizer-llama3", "models",
            "tokenizer.json");
        File.Copy(llama3, Path.Combine(dir, "tokenizer.json"));
        new OnnxEncoderConfig
        {
            Pooling = "last-token", Normalize = true, MaxTokens = 64, AddBos = true,
            AddEos = true
        }.Save(dir);
        string[] texts = { "The movie was great.", "naïve café — 日本語 😀", "def f(x): return x * 2", "a" };

        // Hugging Face's ids (no specials), framed as configured: BOS first, EOS last.
        string textsPath = Path.Combine(dir, "texts.json");
        File.WriteAllText(textsPath, JsonSerializer.Serialize(texts));
        int[][] hf = JsonSerializer.Deserialize<int[][]>(Node.Run("hf-tokenize.mjs", textsPath))!;
        int[][] framed = hf.Select(ids => new[] { 128000 }.Concat(ids).Append(128001).ToArray()).ToArray();
        string idsPath = Path.Combine(dir, "ids.json"), outPath = Path.Combine(dir, "out.json");
        File.WriteAllText(idsPath, JsonSerializer.Serialize(framed));
        PyTorch.Run(ExportAndEncode, dir, "128256", idsPath, outPath);
        double[][] reference = JsonSerializer.Deserialize<double[][]>(File.ReadAllText(outPath))!;

        var settings = new Dictionary<string, OnnxEncoderSettings>
        {
            ["tiny"] = new()
            {
                Directory = dir,
                Threads = 1
            }
        };
        var encoder = (OnnxSentenceEncoder)EncoderFactory.Create("tiny", new EncoderOptions { Onnx = settings });
        Assert.Equal(16, encoder.Dim);
        var batched = new float[texts.Length * 16];
        encoder.Encode(texts, batched); // one padded batch: last-token pooling must pick each row's own last token
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(framed[i], encoder.Tokenize(texts[i]));
            for (int k = 0; k < 16; k++) Assert.Equal(reference[i][k], batched[i * 16 + k], 5);
        }
        int[] cut = encoder.Tokenize(string.Join(" ", Enumerable.Repeat("word", 200)));
        Assert.Equal(64, cut.Length);
        Assert.Equal(128001, cut[^1]); // cut to max_tokens, the EOS kept last
    }
}
