using LoPAProxy.ModelServer.Generation;

namespace LoPAProxy.ModelServer.Endpoints;

/// <summary>One prompt of a request: what the decoder runs, and its text for echo when it was text.</summary>
internal sealed record Prompt(PromptInput Input, string? EchoText)
{
    public int Count => Input.Count;
}
