using Plotly.NET;
using Chart = Plotly.NET.CSharp.Chart;

namespace LabNotebooks;

/// <summary>One named series of a figure: x and y values of the same length.</summary>
public sealed record Series(string Name, IReadOnlyList<double> X, IReadOnlyList<double> Y);

/// <summary>The figures the experiments draw most, one call each: titled, axes named, one trace per series.</summary>
public static class Figures
{
    /// <summary>Lines with markers, one per series.</summary>
    public static GenericChart Lines(string title, string xTitle, string yTitle, IEnumerable<Series> series) =>
        Combine(series.Select(s => Chart.Line<double, double, string>(s.X, s.Y, ShowMarkers: true, Name: s.Name)), title, xTitle, yTitle);

    /// <summary>Grouped columns: one group per category, one column per series (each series' values in category order).</summary>
    public static GenericChart Columns(string title, string yTitle, IReadOnlyList<string> categories, IEnumerable<(string Name, IReadOnlyList<double> Values)> series) =>
        Combine(series.Select(s =>
        {
            if (s.Values.Count != categories.Count)
            {
                throw new ArgumentException($"series {s.Name} has {s.Values.Count} values for {categories.Count} categories", nameof(series));
            }
            return Chart.Column<double, string, string>(s.Values, Keys: new Plotly.NET.CSharp.Optional<IEnumerable<string>>(categories, true), Name: s.Name);
        }), title, null, yTitle);

    private static GenericChart Combine(IEnumerable<GenericChart> traces, string title, string? xTitle, string yTitle)
    {
        var list = traces.ToList();
        if (list.Count == 0)
        {
            throw new ArgumentException("a figure needs at least one series");
        }
        var chart = list.Count == 1 ? list[0] : Chart.Combine(list);
        return chart.WithAxisTitles(xTitle, yTitle).Titled(title);
    }
}
