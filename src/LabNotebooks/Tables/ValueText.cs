using System.Globalization;
using System.Net;

namespace LabNotebooks;

/// <summary>How tables and reports write single values: invariant culture, short numbers, ISO times.</summary>
public static class ValueText
{
    public static string Format(object? value) => value switch
    {
        null => "",
        string s => s,
        double d => d.ToString("G6", CultureInfo.InvariantCulture),
        float f => f.ToString("G6", CultureInfo.InvariantCulture),
        decimal m => m.ToString(CultureInfo.InvariantCulture),
        DateTimeOffset t => t.ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture),
        DateTime t => t.ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture),
        TimeSpan t => t.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + " s",
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    public static bool IsNumeric(object? value) =>
        value is byte or sbyte or short or ushort or int or uint or long or ulong or float or double or decimal;

    /// <summary>HTML-escapes text (&amp;, &lt;, &gt;, quotes).</summary>
    public static string Html(string? text) => WebUtility.HtmlEncode(text ?? "");
}
