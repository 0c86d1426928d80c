using System.ComponentModel;
using System.Globalization;

namespace LoPAProxy.Proxy.Configuration;

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
