using System.Reflection;
using System.Text;

namespace LabNotebooks;

/// <summary>
/// A table of values with named columns, made from a list of records (<see cref="From{T}"/>). Renders as an HTML
/// table in notebooks and reports, and as aligned text in a terminal (<see cref="ToText"/>).
/// </summary>
[TypeFormatterSource(typeof(LabFormatterSource), PreferredMimeTypes = [MimeTypes.Html, MimeTypes.PlainText])]
public sealed class Table
{
    private readonly List<object?[]> _rows;

    public Table(IEnumerable<string> columns, IEnumerable<IEnumerable<object?>> rows, string? title = null)
    {
        Columns = columns.ToArray();
        _rows = rows.Select(r => r.ToArray()).ToList();
        foreach (var r in _rows)
        {
            if (r.Length != Columns.Count)
            {
                throw new ArgumentException($"a row has {r.Length} values but the table has {Columns.Count} columns", nameof(rows));
            }
        }
        Title = title;
    }

    public string? Title { get; }

    public IReadOnlyList<string> Columns { get; }

    public IReadOnlyList<IReadOnlyList<object?>> Rows => _rows;

    /// <summary>
    /// One row per record, one column per public readable property (in declaration order), or per key for
    /// dictionaries. Scalars (numbers, strings) give a single <c>value</c> column.
    /// </summary>
    public static Table From<T>(IEnumerable<T> records, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(records);
        var list = records.ToList();
        if (list.Count > 0 && list.All(r => r is IReadOnlyDictionary<string, object?>))
        {
            var dicts = list.Cast<IReadOnlyDictionary<string, object?>>().ToList();
            var keys = dicts.SelectMany(d => d.Keys).Distinct().ToList();
            return new Table(keys, dicts.Select(d => keys.Select(k => d.TryGetValue(k, out var v) ? v : null)), title);
        }
        var type = typeof(T) == typeof(object) && list.Count > 0 && list[0] is { } first ? first.GetType() : typeof(T);
        if (IsScalar(type))
        {
            return new Table(["value"], list.Select(v => new object?[] { v }), title);
        }
        var props = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanRead && p.GetIndexParameters().Length == 0)
            .OrderBy(p => p.MetadataToken)
            .ToList();
        var fields = props.Count == 0 ? type.GetFields(BindingFlags.Public | BindingFlags.Instance).ToList() : [];
        if (props.Count > 0)
        {
            return new Table(props.Select(p => p.Name), list.Select(r => props.Select(p => r is null ? null : p.GetValue(r))), title);
        }
        return new Table(fields.Select(f => f.Name), list.Select(r => fields.Select(f => r is null ? null : f.GetValue(r))), title);
    }

    /// <summary>An HTML &lt;table&gt; with escaped cells; numeric columns are right-aligned.</summary>
    public string ToHtml()
    {
        var numeric = NumericColumns();
        var sb = new StringBuilder();
        sb.Append("<table class=\"lab-table\">");
        if (Title is not null)
        {
            sb.Append("<caption>").Append(ValueText.Html(Title)).Append("</caption>");
        }
        sb.Append("<thead><tr>");
        for (var c = 0; c < Columns.Count; c++)
        {
            sb.Append(numeric[c] ? "<th style=\"text-align:right\">" : "<th style=\"text-align:left\">").Append(ValueText.Html(Columns[c])).Append("</th>");
        }
        sb.Append("</tr></thead><tbody>");
        foreach (var row in _rows)
        {
            sb.Append("<tr>");
            for (var c = 0; c < row.Length; c++)
            {
                sb.Append(numeric[c] ? "<td style=\"text-align:right\">" : "<td style=\"text-align:left\">").Append(ValueText.Html(ValueText.Format(row[c]))).Append("</td>");
            }
            sb.Append("</tr>");
        }
        sb.Append("</tbody></table>");
        return sb.ToString();
    }

    /// <summary>Aligned plain text: a header, a rule, one line per row.</summary>
    public string ToText()
    {
        var numeric = NumericColumns();
        var cells = _rows.Select(r => r.Select(v => ValueText.Format(v).ReplaceLineEndings(" ")).ToArray()).ToList();
        var widths = Columns.Select((h, c) => Math.Max(h.Length, cells.Count == 0 ? 0 : cells.Max(r => r[c].Length))).ToArray();
        var sb = new StringBuilder();
        if (Title is not null)
        {
            sb.Append(Title).Append('\n');
        }
        string Line(IReadOnlyList<string> values) =>
            string.Join("  ", values.Select((v, c) => numeric[c] ? v.PadLeft(widths[c]) : v.PadRight(widths[c]))).TrimEnd();
        sb.Append(Line(Columns)).Append('\n');
        sb.Append(string.Join("  ", widths.Select(w => new string('-', w)))).Append('\n');
        foreach (var r in cells)
        {
            sb.Append(Line(r)).Append('\n');
        }
        return sb.ToString().TrimEnd('\n');
    }

    public override string ToString() => ToText();

    private bool[] NumericColumns() =>
        Columns.Select((_, c) => _rows.Count > 0 && _rows.All(r => r[c] is null || ValueText.IsNumeric(r[c])) && _rows.Any(r => r[c] is not null)).ToArray();

    private static bool IsScalar(Type t) =>
        t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(decimal) || t == typeof(DateTime) || t == typeof(DateTimeOffset) || t == typeof(TimeSpan) || t == typeof(Guid);
}

/// <summary>Conveniences for making tables.</summary>
public static class TableExtensions
{
    /// <summary>A table with one row per record and one column per public property.</summary>
    public static Table ToTable<T>(this IEnumerable<T> records, string? title = null) => Table.From(records, title);
}
