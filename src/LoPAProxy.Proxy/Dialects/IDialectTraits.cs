namespace LoPAProxy.Proxy.Dialects;

/// <summary>What a dialect is, known before any service is made (start-up validation reads it).</summary>
public interface IDialectTraits
{
    /// <summary>The name configuration uses.</summary>
    static abstract string Name { get; }

    /// <summary>The dialect needs the FM's tokenizer (and embedding table):
    /// LoPA:Clusters:&lt;id&gt;:ModelPath.</summary>
    static abstract bool NeedsModel { get; }
}
