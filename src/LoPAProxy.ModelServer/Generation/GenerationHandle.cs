using System.Threading.Channels;

namespace LoPAProxy.ModelServer.Generation;

/// <summary>A running generation: its tokens as they are sampled, then how it finished.</summary>
public sealed class GenerationHandle
{
    internal GenerationHandle(ChannelReader<SampledToken> tokens) { Tokens = tokens; }

    public ChannelReader<SampledToken> Tokens { get; }
    /// <summary>Valid once <see cref="Tokens"/> has completed without an error.</summary>
    public FinishReason Finish { get; internal set; } = FinishReason.Length;
}
