namespace LoPAProxy.ModelServer.Endpoints;

/// <summary>One prompt as input rows [count, hidden]: token embeddings and/or client embeddings.</summary>
/// <param name="LastToken">the last prompt token (decoding the first new token depends on it), or −1 after embeddings.</param>
/// <param name="EchoText">the prompt's text for echo, when it was text.</param>
internal sealed record Prompt(float[] Rows, int Count, int LastToken, string? EchoText, bool FromEmbeds);
