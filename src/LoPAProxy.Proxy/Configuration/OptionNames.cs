using System.Text;

namespace LoPAProxy.Proxy.Configuration;

/// <summary>
/// The configuration spelling of an options enum: its members in kebab-case ("last-user", "fp16"), matched
/// ignoring case. The configuration binder uses <see cref="OptionNameConverter{T}"/>, so a misspelt value fails at
/// start-up naming the key, the value and the valid names.
/// </summary>
public static class OptionNames
{
    public static string Of<T>(T value) where T : struct, Enum => Kebab(value.ToString());

    public static IReadOnlyList<string> All<T>() where T : struct, Enum => Enum.GetValues<T>().Select(Of).ToArray();

    public static bool TryParse<T>(string? text, out T value) where T : struct, Enum
    {
        foreach (T candidate in Enum.GetValues<T>())
        {
            if (string.Equals(Of(candidate), text?.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                value = candidate;
                return true;
            }
        }
        value = default;
        return false;
    }

    private static string Kebab(string name)
    {
        var text = new StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0) text.Append('-');
            text.Append(char.ToLowerInvariant(name[i]));
        }
        return text.ToString();
    }
}
