using Microsoft.AspNetCore.Http;

namespace LoPAProxy.OpenAi;

/// <summary>Turns an exception an app knows into the OpenAI error it means; null when it is not one of its
/// own.</summary>
public interface IApiErrorMapper
{
    ApiException? Map(Exception error, HttpContext http);
}
