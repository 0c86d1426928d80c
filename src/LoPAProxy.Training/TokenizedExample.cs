using LoPAProxy.Engine.Tokenizers;

namespace LoPAProxy.Training;

/// <summary>
/// Token ids of prompt and continuation as the FM will see them: ids(prompt + target) split where ids(prompt) ends,
/// so the target's tokens are exactly those the model produces after the prompt (SentencePiece attaches the space
/// to the following word). Long prompts lose tokens from their start (after BOS), keeping the question and answer.
/// </summary>
public sealed record TokenizedExample(int[] Ids, int PromptLength)
{
    public int TargetLength => Ids.Length - PromptLength;

    public static TokenizedExample Create(ITokenizer tokenizer, string prompt, string target, int maxTokens)
    {
        int[] p = tokenizer.Encode(prompt, addBos: true, addEos: false);
        int[] full = tokenizer.Encode(prompt + target, addBos: true, addEos: false);
        int shared = 0;
        while (shared < p.Length && shared < full.Length && p[shared] == full[shared]) shared++;
        // A merge across the boundary shortens the shared prefix; the target then starts earlier, which is what the model reads.
        if (shared == full.Length) throw new ArgumentException($"target '{target}' adds no tokens after its prompt");
        int excess = full.Length - maxTokens;
        if (excess > 0)
        {
            if (excess >= shared - 1) throw new ArgumentException($"target of {full.Length - shared} tokens does not fit in {maxTokens}");
            full = full.Take(1).Concat(full.Skip(1 + excess)).ToArray();
            shared -= excess;
        }
        return new TokenizedExample(full, shared);
    }
}
