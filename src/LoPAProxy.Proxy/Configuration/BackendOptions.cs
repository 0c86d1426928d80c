namespace LoPAProxy.Proxy.Configuration;

public sealed class BackendOptions
{
    /// <summary>vllm-chat | vllm-completions | sglang.</summary>
    public string Dialect { get; set; } = "vllm-chat";
    /// <summary>The model name the backend serves; requests are rewritten to it.</summary>
    public string Model { get; set; } = "";
    /// <summary>The backend model's hidden size d; adapters must match it.</summary>
    public int HiddenSize { get; set; }
    /// <summary>Model directory or file with the FM's tokenizer and input embeddings (full-sequence
    /// dialects).</summary>
    public string? ModelPath { get; set; }
    /// <summary>fp32 | bf16 | fp16: the soft prompt's dtype on the wire.</summary>
    public WireDType WireDType { get; set; } = WireDType.Fp32;
    /// <summary>vllm-chat: the prompt_embeds part goes "before" (default) or "after" the instance text.</summary>
    public EmbedsPosition EmbedsPosition { get; set; } = EmbedsPosition.Before;
    /// <summary>
    /// The backend's context length in tokens (vLLM's --max-model-len). Unset: the model file's (ModelPath);
    /// with neither, prompts are not measured in tokens (the body limit still bounds them).
    /// </summary>
    public int? MaxModelLen { get; set; }
    /// <summary>
    /// The backend's own API key, sent as "Authorization: Bearer" instead of the tenant's (which never crosses).
    /// From a secret or the environment: LoPA__Clusters__&lt;id&gt;__ApiKey.
    /// </summary>
    public string? ApiKey { get; set; }
    /// <summary>
    /// The backend honours stream_options.include_usage (vLLM, SGLang and TensorRT-LLM do): streamed answers then
    /// carry usage for accounting, the proxy asking for it where the client did not (and taking it out again).
    /// </summary>
    public bool StreamUsage { get; set; } = true;
}
