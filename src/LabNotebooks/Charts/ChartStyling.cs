using System.Globalization;
using Microsoft.FSharp.Core;
using Plotly.NET;
using Plotly.NET.CSharp;
using Chart = Plotly.NET.Chart;
using Plotly.NET.LayoutObjects;

namespace LabNotebooks;

/// <summary>
/// Conveniences for the lab's Plotly.NET charts: shaded x windows (a snapshot instant, a storage outage, a block
/// job) as plotly rectangle shapes spanning the plot height, with a label; title and axis titles in one call each.
/// </summary>
public static class ChartStyling
{
    /// <summary>The default fill of a shaded window (amber).</summary>
    public const string DefaultColor = "#f2a900";

    /// <summary>
    /// Shades the x range [<paramref name="start"/>, <paramref name="end"/>] across the whole plot height: a
    /// <c>rect</c> shape (x in data coordinates, y in paper coordinates, below the traces) and, with a
    /// <paramref name="label"/>, an annotation at its top left.
    /// </summary>
    public static GenericChart Shade(this GenericChart chart, double start, double end, string? label = null, string color = DefaultColor) =>
        AddWindow(chart, start, end, label, color);

    /// <summary>Shades a time range across the whole plot height (x values as plotly date strings, UTC).</summary>
    public static GenericChart Shade(this GenericChart chart, DateTimeOffset start, DateTimeOffset end, string? label = null, string color = DefaultColor) =>
        AddWindow(chart, TimeValue(start), TimeValue(end), label, color);

    /// <summary>Titles the axes; put the unit in parentheses (<c>"time (s)"</c>).</summary>
    public static GenericChart WithAxisTitles(this GenericChart chart, string? x, string? y)
    {
        ArgumentNullException.ThrowIfNull(chart);
        if (x is not null)
        {
            chart = chart.WithXAxisStyle<double, double, string>(TitleText: x);
        }
        return y is null ? chart : chart.WithYAxisStyle<double, double, string>(TitleText: y);
    }

    /// <summary>Sets the chart's title.</summary>
    public static GenericChart Titled(this GenericChart chart, string title)
    {
        ArgumentNullException.ThrowIfNull(chart);
        return Chart.withTitle(title, FSharpOption<Font>.None).Invoke(chart);
    }

    private static GenericChart AddWindow(GenericChart chart, object start, object end, string? label, string color)
    {
        ArgumentNullException.ThrowIfNull(chart);
        var outline = new Line();
        outline.SetProperty("width", 0);
        var shape = new Shape();
        shape.SetProperty("type", "rect");
        shape.SetProperty("xref", "x");
        shape.SetProperty("yref", "paper");
        shape.SetProperty("x0", start);
        shape.SetProperty("x1", end);
        shape.SetProperty("y0", 0);
        shape.SetProperty("y1", 1);
        shape.SetProperty("fillcolor", color);
        shape.SetProperty("opacity", 0.2);
        shape.SetProperty("layer", "below");
        shape.SetProperty("line", outline);
        // Plotly.NET's Append puts new shapes first; keep them in the order they were shaded.
        chart = Chart.withShapes(Existing<Shape>(chart, "shapes").Append(shape), FSharpOption<bool>.Some(false)).Invoke(chart);
        if (label is null)
        {
            return chart;
        }
        var note = new Annotation();
        note.SetProperty("xref", "x");
        note.SetProperty("yref", "paper");
        note.SetProperty("x", start);
        note.SetProperty("y", 1);
        note.SetProperty("xanchor", "left");
        note.SetProperty("yanchor", "bottom");
        note.SetProperty("text", label);
        note.SetProperty("showarrow", false);
        return Chart.withAnnotations(Existing<Annotation>(chart, "annotations").Append(note), FSharpOption<bool>.Some(false)).Invoke(chart);
    }

    private static IEnumerable<T> Existing<T>(GenericChart chart, string property)
    {
        var value = GenericChart.getLayout(chart).TryGetPropertyValue(property);
        return FSharpOption<object>.get_IsSome(value) && value.Value is IEnumerable<T> items ? items.ToList() : [];
    }

    private static string TimeValue(DateTimeOffset t) =>
        t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture);
}
