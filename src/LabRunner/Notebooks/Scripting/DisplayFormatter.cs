using System.Collections;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using LabNotebooks;

namespace LabRunner.Notebooks.Scripting;

/// <summary>
/// Turns a value into a Jupyter mime bundle. Formatters are found the way Polyglot Notebooks finds them: an
/// attribute named <c>TypeFormatterSourceAttribute</c> on the value's type (or a base type) names a source whose
/// <c>CreateTypeFormatters()</c> returns objects with <c>MimeType</c> and <c>Format(object, TextWriter)</c>.
/// LabNotebooks' <see cref="NotebookFormatters"/> come first (Plotly.NET charts become <c>application/vnd.plotly.v1+json</c>).
/// Without one, collections of records become tables; text/plain is always present.
/// </summary>
public static class DisplayFormatter
{
    private const int ListLimit = 20;

    public static JsonObject Format(object? value, IReadOnlyCollection<string>? mimeTypes = null)
    {
        var data = new JsonObject();
        if (value is HtmlString html)
        {
            data[MimeTypes.Html] = html.Html;
        }
        else if (value is not null)
        {
            // Types LabNotebooks formats without owning them (Plotly.NET charts, LabKernel's chains).
            foreach (var (mime, text) in NotebookFormatters.TryFormat(value) ?? new Dictionary<string, string>())
            {
                data[mime] = mime.EndsWith("json", StringComparison.Ordinal) ? ParseJson(text) : text;
            }
            foreach (var (mime, text) in ConventionFormats(value))
            {
                if (data.ContainsKey(mime))
                {
                    continue;
                }
                data[mime] = mime.EndsWith("json", StringComparison.Ordinal) ? ParseJson(text) : text;
            }
            if (!data.ContainsKey(MimeTypes.Html) && value is IEnumerable seq and not string && TryTable(seq) is { } table)
            {
                data[MimeTypes.Html] = table.ToHtml();
            }
        }
        if (!data.ContainsKey(MimeTypes.PlainText))
        {
            data[MimeTypes.PlainText] = PlainText(value);
        }
        if (mimeTypes is { Count: > 0 })
        {
            foreach (var key in data.Select(kv => kv.Key).ToList())
            {
                if (key != MimeTypes.PlainText && !mimeTypes.Contains(key))
                {
                    data.Remove(key);
                }
            }
        }
        return data;
    }

    public static string PlainText(object? value) => value switch
    {
        null => "<null>",
        string s => s,
        HtmlString h => h.Html,
        IDictionary d => "{ " + string.Join(", ", d.Cast<DictionaryEntry>().Take(ListLimit).Select(e => $"{PlainText(e.Key)}: {PlainText(e.Value)}")) + " }",
        IEnumerable e => List(e),
        IFormattable f => ValueText.Format(f),
        _ => value.ToString() ?? "",
    };

    private static string List(IEnumerable e)
    {
        var items = e.Cast<object?>().Take(ListLimit + 1).ToList();
        var shown = string.Join(", ", items.Take(ListLimit).Select(PlainText));
        return "[ " + shown + (items.Count > ListLimit ? ", ..." : "") + " ]";
    }

    private static Table? TryTable(IEnumerable seq)
    {
        var items = seq.Cast<object?>().Take(1000).ToList();
        var first = items.FirstOrDefault(i => i is not null);
        if (first is null || first is string || first.GetType().IsPrimitive || first is IFormattable || first is IEnumerable)
        {
            return null;
        }
        return Table.From(items);
    }

    /// <summary>The outputs of every convention-based formatter that accepts <paramref name="value"/>.</summary>
    internal static IEnumerable<(string Mime, string Text)> ConventionFormats(object value)
    {
        for (var type = value.GetType(); type is not null; type = type.BaseType)
        {
            foreach (var attribute in type.GetCustomAttributes(false))
            {
                var at = attribute.GetType();
                if (at.Name != "TypeFormatterSourceAttribute" || at.GetProperty("FormatterSourceType")?.GetValue(attribute) is not Type sourceType)
                {
                    continue;
                }
                var source = Activator.CreateInstance(sourceType, nonPublic: true);
                if (sourceType.GetMethod("CreateTypeFormatters", BindingFlags.Public | BindingFlags.Instance)?.Invoke(source, null) is not IEnumerable formatters)
                {
                    continue;
                }
                foreach (var formatter in formatters)
                {
                    if (formatter is null)
                    {
                        continue;
                    }
                    var ft = formatter.GetType();
                    if (ft.GetProperty("MimeType")?.GetValue(formatter) is not string mime)
                    {
                        continue;
                    }
                    if (ft.GetProperty("Type")?.GetValue(formatter) is Type target && !target.IsInstanceOfType(value))
                    {
                        continue;
                    }
                    var format = ft.GetMethod("Format", [typeof(object), typeof(TextWriter)]);
                    if (format is null)
                    {
                        continue;
                    }
                    using var writer = new StringWriter(System.Globalization.CultureInfo.InvariantCulture);
                    if (format.Invoke(formatter, [value, writer]) is true)
                    {
                        yield return (mime, writer.ToString());
                    }
                }
            }
        }
    }

    private static JsonNode? ParseJson(string text)
    {
        try
        {
            return JsonNode.Parse(text);
        }
        catch (JsonException)
        {
            return JsonValue.Create(text);
        }
    }
}
