using LoPAProxy.Proxy.Requests;
using Microsoft.AspNetCore.Http;

namespace LoPAProxy.Proxy.Dialects;

/// <summary>
/// What the rewrite added, for the request log. <paramref name="Embedded"/>: streams whose text takes the place of
/// placeholder strings in the body when it is sent (<see cref="StreamedBody"/>). <paramref name="Path"/>: the
/// backend's path for the request when it is not the OpenAI one. <paramref name="Answer"/>: maps the backend's
/// answer back to OpenAI's shape when it is not in it.
/// </summary>
public sealed record RewriteResult(int SoftPromptRows, long BytesAdded,
    IReadOnlyList<EmbeddedText>? Embedded = null, PathString? Path = null,
    IDialectAnswer? Answer = null);
