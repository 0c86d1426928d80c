namespace LoPAProxy.Proxy.Dialects;

/// <summary>Turns a backend's native answer into OpenAI's (set on the request by its dialect's rewrite).</summary>
public interface IDialectAnswer
{
    Task WriteAsync(Yarp.ReverseProxy.Transforms.ResponseTransformContext context);
}
