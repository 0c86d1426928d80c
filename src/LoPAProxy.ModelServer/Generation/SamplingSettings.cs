using LLama.Native;

namespace LoPAProxy.ModelServer.Generation;

/// <summary>
/// How one choice picks tokens. Temperature 0 is greedy (argmax); otherwise llama.cpp's sampler chain top-k →
/// top-p → temperature → a seeded draw, the order llama.cpp's own server uses for these three. OpenAI's logit_bias
/// is added to the logits first (llama.cpp's logit-bias sampler), so it steers greedy choices too; a GBNF Grammar
/// (response_format json_object) then rules out every token that would leave it. IgnoreEos (vLLM's
/// ignore_eos) keeps generating past end-of-generation tokens, for benchmarks. TopLogprobs, when set, makes each
/// token carry its log-probability and that many alternatives (<see cref="TokenLogprobs"/>); it changes no choice.
/// </summary>
public sealed record SamplingSettings(float Temperature, float TopP, int TopK, uint Seed, bool IgnoreEos = false,
    IReadOnlyList<TokenBias>? LogitBias = null, string? Grammar = null, int? TopLogprobs = null)
{
    public static readonly SamplingSettings Greedy = new(0, 1, 0, 0);

    /// <summary>The start rule of a <see cref="Grammar"/>.</summary>
    public const string GrammarRoot = "root";

    /// <summary>The sampler chain; whoever creates it disposes it.</summary>
    internal SafeLLamaSamplerChainHandle CreateChain(SafeLlamaModelHandle.Vocabulary vocabulary)
    {
        SafeLLamaSamplerChainHandle chain = SafeLLamaSamplerChainHandle.Create(LLamaSamplerChainParams.Default());
        if (LogitBias is { Count: > 0 } biases)
        {
            LLamaLogitBias[] native = biases.Select(b => new LLamaLogitBias { Token = b.Token, Bias = b.Bias })
                .ToArray();
            chain.AddLogitBias(vocabulary.Count, native);
        }
        if (Grammar is not null) chain.AddGrammar(vocabulary, Grammar, GrammarRoot);
        if (Temperature <= 0)
        {
            chain.AddGreedySampler();
            return chain;
        }
        if (TopK > 0) chain.AddTopK(TopK);
        if (TopP < 1) chain.AddTopP(TopP, 1);
        chain.AddTemperature(Temperature);
        chain.AddDistributionSampler(Seed);
        return chain;
    }
}

/// <summary>A bias added to one token's logit (OpenAI's logit_bias: −100 bans the token, +100 all but forces it).
/// </summary>
public readonly record struct TokenBias(int Token, float Bias);
