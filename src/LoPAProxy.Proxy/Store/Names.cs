namespace LoPAProxy.Proxy.Store;

/// <summary>Tenant and adapter names are path segments: 1–64 of [A-Za-z0-9._-], never "." or "..".</summary>
public static class Names
{
    public static bool IsValid(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= 64 && name is not ("." or "..") &&
        name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');

    /// <summary>The rule in words, for errors: "tenant names are 1–64 of [A-Za-z0-9._-]".</summary>
    public static string Rule(string what) => $"{what} are 1–64 of [A-Za-z0-9._-]";
}
