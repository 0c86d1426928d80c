namespace LoPAProxy.Proxy.Requests;

/// <summary>
/// Text produced while an outgoing body is sent, standing in for <paramref name="Placeholder"/> — a JSON string
/// of the body (<see cref="StreamedBody"/>). <paramref name="IsJsonValue"/>: the text is a whole JSON value that
/// replaces the string, quotes and all; else it is the string's content (base64 needs no escapes).
/// </summary>
public sealed record EmbeddedText(string Placeholder, Stream Text, bool IsJsonValue = false);
