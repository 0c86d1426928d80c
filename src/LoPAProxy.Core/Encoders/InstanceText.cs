namespace LoPAProxy.Core.Encoders;

/// <summary>What every encoder does to instance text first, so no input can crash or stall it.</summary>
public static class InstanceText
{
    /// <summary>Characters kept before tokenising: far beyond any encoder's token limit, and bounds the work.</summary>
    public const int MaxChars = 64 * 1024;

    /// <summary>
    /// No real text averages more characters per token than this (prose: 4–6), so cutting at maxTokens × this keeps
    /// every token an encoder would use while bounding the tokenizer's work to its token limit.
    /// </summary>
    public const int MaxCharsPerToken = 32;

    /// <summary>The text cut to what an encoder of <paramref name="maxTokens"/> tokens can use (never inside a
    /// pair).</summary>
    public static string Bound(string text, int maxTokens)
    {
        long keep = Math.Min(MaxChars, (long)maxTokens * MaxCharsPerToken);
        if (text.Length <= keep) return text;
        int cut = (int)keep;
        return text[..(char.IsHighSurrogate(text[cut - 1]) ? cut - 1 : cut)];
    }

    /// <summary>Unpaired surrogates become U+FFFD; text past <see cref="MaxChars"/> is cut (never inside a
    /// pair).</summary>
    public static string Sanitize(string? text)
    {
        if (string.IsNullOrEmpty(text)) return "";
        if (text.Length > MaxChars) text = text[..(char.IsHighSurrogate(text[MaxChars - 1]) ? MaxChars - 1 : MaxChars)];
        System.Text.StringBuilder? sb = null;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            bool ok = !char.IsSurrogate(c) || (char.IsHighSurrogate(c) && i + 1 < text.Length
                && char.IsLowSurrogate(text[i + 1]));
            if (char.IsHighSurrogate(c) && ok) { sb?.Append(c).Append(text[i + 1]); i++; continue; }
            if (!ok)
            {
                sb ??= new System.Text.StringBuilder(text, 0, i, text.Length);
                sb.Append('\uFFFD');
            }
            else
            {
                sb?.Append(c);
            }
        }
        return sb?.ToString() ?? text;
    }
}
