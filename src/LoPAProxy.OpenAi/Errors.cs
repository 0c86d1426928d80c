namespace LoPAProxy.OpenAi;

/// <summary>
/// The errors both servers answer with, each message written once. Unknown and another tenant's look the same:
/// 404, never 403.
/// </summary>
public static class Errors
{
    public static ApiException ModelNotFound(string model, string param = "model") =>
        new(404, $"The model `{model}` does not exist.", param, "model_not_found");

    public static ApiException AdapterNotFound(string reference, string param = "model") =>
        new(404, $"The adapter `{reference}` does not exist.", param, "adapter_not_found");

    public static ApiException InvalidApiKey() =>
        new(401, "a valid tenant API key is required (Authorization: Bearer <key>)", null, "invalid_api_key");

    /// <summary>A soft prompt asked on the endpoint its backend's dialect cannot carry it on.</summary>
    public static ApiException DialectMismatch(string dialect, string carriedOn) =>
        new(422, $"this route's backend speaks '{dialect}', which carries soft prompts on {carriedOn} only", "model",
            "dialect_mismatch");

    public static ApiException MissingModel() =>
        ApiException.BadRequest("you must provide a model parameter (a string)", "model", "missing_model");

    /// <summary>A request field the chosen backend cannot honour: refused by name, never dropped.</summary>
    public static ApiException Unsupported(string field, string reason) =>
        ApiException.BadRequest($"'{field}' is not supported: {reason}", field, "unsupported_parameter");

    /// <summary>A body Kestrel refused: 413 over the size limit, else 400 with its reason.</summary>
    public static ApiException BadHttpRequest(Microsoft.AspNetCore.Http.BadHttpRequestException e) =>
        e.StatusCode == 413
            ? new ApiException(413, "the request body is over this route's size limit", null, "body_too_large")
            : new ApiException(e.StatusCode, e.Message, null, "bad_request") { Type = "invalid_request_error" };

    /// <summary>Anything unexpected: the request id to quote, nothing of the failure itself.</summary>
    public static ApiException Internal(string requestId) =>
        new(500, $"The server had an error while processing your request (request id {requestId}).", null,
            "internal_error");

    /// <summary>A body that is not JSON (or not the JSON the endpoint reads), with the parser's reason.</summary>
    public static ApiException InvalidJson(string why) =>
        ApiException.BadRequest($"the body is not valid JSON: {why}", null, "invalid_json");

    public static ApiException NotAJsonObject() =>
        ApiException.BadRequest("the body must be a JSON object", null, "invalid_json");

    public static ApiException EmptyPrompt(string param = "prompt", string code = "empty_prompt") =>
        ApiException.BadRequest("the prompt is empty", param, code);

    public static ApiException TooManyPrompts(int max, string param = "prompt") =>
        ApiException.BadRequest($"at most {max} prompts per request", param);

    public static ApiException PromptShape(string param = "prompt") =>
        ApiException.BadRequest("'prompt' must be a string, a list of strings, or token ids", param);

    public static ApiException MessagesMissing(string code = "invalid_request") =>
        ApiException.BadRequest("'messages' must be a non-empty list", "messages", code);

    public static ApiException MessageNotObject(string param = "messages") =>
        ApiException.BadRequest("each message must be an object", param);
}
