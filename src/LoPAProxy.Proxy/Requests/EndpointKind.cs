namespace LoPAProxy.Proxy.Requests;

/// <summary>What a forwarded request asks the model server to do.</summary>
public enum EndpointKind
{
    /// <summary>/…/chat/completions: the LoPA step applies.</summary>
    Chat,
    /// <summary>/…/completions: the LoPA step applies.</summary>
    Completions,
    /// <summary>/…/generate: SGLang's native endpoint (raw input_embeds); the proxy writes it, clients may
    /// not.</summary>
    Generate,
    /// <summary>Anything else (models, embeddings, tokenize, …): forwarded, but never with an adapter.</summary>
    Other,
}
