using System.Reflection;
using System.Text.RegularExpressions;
using LoPAProxy.Engine.Tests.Support;
using LoPAProxy.Proxy.Configuration;

namespace LoPAProxy.Proxy.Tests;

/// <summary>docs/configuration.md lists exactly the keys the options classes bind.</summary>
public class ConfigurationReferenceTests
{
    [Fact]
    public void The_configuration_reference_names_every_key_and_no_other()
    {
        var bound = Keys(typeof(LoPAOptions), "LoPA").ToHashSet();
        string doc = File.ReadAllText(RepoFiles.Path_("docs", "configuration.md"));
        var documented = Regex.Matches(doc, "`(LoPA:[A-Za-z0-9:<>_-]+)`")
            .Select(m => Regex.Replace(m.Groups[1].Value, "<[^>]+>", "*")).ToHashSet();
        Assert.Empty(bound.Except(documented));
        Assert.Empty(documented.Except(bound));
    }

    /// <summary>Settable properties, recursing into option classes; a dictionary's key is "*".</summary>
    private static IEnumerable<string> Keys(Type type, string prefix)
    {
        foreach (PropertyInfo p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p =>
            p.SetMethod is not null))
        {
            string key = $"{prefix}:{p.Name}";
            Type t = p.PropertyType;
            if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(Dictionary<,>))
            {
                foreach (string inner in Keys(t.GetGenericArguments()[1], key + ":*")) yield return inner;
            }
            else if (IsOptionsClass(t))
            {
                foreach (string inner in Keys(t, key)) yield return inner;
            }
            else
            {
                yield return key;
            }
        }
    }

    private static bool IsOptionsClass(Type t) => t.IsClass && t != typeof(string)
        && t.Namespace?.StartsWith("LoPAProxy", StringComparison.Ordinal) == true;

}
