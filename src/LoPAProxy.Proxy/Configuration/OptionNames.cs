using System.ComponentModel;
using System.Globalization;
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

/// <summary>Converts an options enum from and to its configuration spelling (<see cref="OptionNames"/>).</summary>
public sealed class OptionNameConverter<T> : EnumConverter where T : struct, Enum
{
    public OptionNameConverter() : base(typeof(T))
    {
    }

    public override object ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value) =>
        value is string text && OptionNames.TryParse(text, out T parsed) ? parsed
            : throw new FormatException($"'{value}' is not one of {string.Join(", ", OptionNames.All<T>())}");

    public override object? ConvertTo(ITypeDescriptorContext? context, CultureInfo? culture, object? value,
        Type destinationType) =>
        destinationType == typeof(string) && value is T member ? OptionNames.Of(member)
            : base.ConvertTo(context, culture, value, destinationType);
}

/// <summary>The soft prompt's dtype on the wire.</summary>
[TypeConverter(typeof(OptionNameConverter<WireDType>))]
public enum WireDType { Fp32, Bf16, Fp16 }

/// <summary>vllm-chat: where the prompt_embeds part goes relative to the instance text.</summary>
[TypeConverter(typeof(OptionNameConverter<EmbedsPosition>))]
public enum EmbedsPosition { Before, After }

/// <summary>Which chat text is the instance the encoder reads.</summary>
[TypeConverter(typeof(OptionNameConverter<InstanceTextSource>))]
public enum InstanceTextSource { LastUser, AllUser }

/// <summary>Where tenants, keys and adapters live. Directory is gone (named only to explain the migration).</summary>
[TypeConverter(typeof(OptionNameConverter<StoreKind>))]
public enum StoreKind { Sqlite, Postgres, Directory }

/// <summary>Where the rate-limit counters live: auto (postgres with a postgres store, else local).</summary>
[TypeConverter(typeof(OptionNameConverter<CountersKind>))]
public enum CountersKind { Auto, Local, Postgres }

/// <summary>What a request meets while shared counters are unreachable.</summary>
[TypeConverter(typeof(OptionNameConverter<CountersDownPolicy>))]
public enum CountersDownPolicy { Open, Closed }

/// <summary>The console log's format.</summary>
[TypeConverter(typeof(OptionNameConverter<LogFormat>))]
public enum LogFormat { Json, Text }
