using System.Globalization;
using System.Net;
using System.Text;

namespace LabRunner.Reporting;

/// <summary>One line of a sweep chart: the values of the other parameters that label it, and its points.</summary>
/// <param name="Label">The other parameters' values (<c>Backend=qemu, Refute=false</c>), or <c>all runs</c>.</param>
/// <param name="Points">The x parameter's value (as the matrix gives it) and the measured value, one per run.</param>
internal sealed record SweepSeries(string Label, IReadOnlyList<(string X, double Y)> Points);

/// <summary>
/// A line chart of one measurement against one parameter of a sweep, drawn as inline SVG: sweep.html is a file that
/// works offline and runs no script, so the chart is plain shapes (axes, a polyline and circles per series, a legend)
/// that any browser shows as it is. Each point carries its values in <c>data-x</c> and <c>data-y</c> and a tooltip
/// (<c>title</c>), so the exact numbers stay readable without a plotting library.
/// </summary>
internal static class SweepChart
{
    private const double Width = 640, PlotHeight = 240, Left = 72, Right = 20, Top = 16, AxisSpace = 44, LegendLine = 18;

    // Distinguishable on white and for the common colour-vision deficiencies (the Okabe-Ito order, black last).
    private static readonly string[] Palette = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"];

    /// <summary>
    /// The SVG of <paramref name="series"/> against <paramref name="xName"/>, whose values in the matrix's order are
    /// <paramref name="xValues"/>: at their numbers when every one is a number, else evenly spaced in that order.
    /// </summary>
    public static string Render(string measurement, string unit, string xName, IReadOnlyList<string> xValues, IReadOnlyList<SweepSeries> series)
    {
        var numeric = xValues.Count > 0 && xValues.All(v => TryNumber(v, out _));
        double XOf(string x) => numeric && TryNumber(x, out var n) ? n : Math.Max(0, IndexOf(xValues, x));
        var xs = numeric ? xValues.Select(v => XOf(v)).ToList() : [.. Enumerable.Range(0, Math.Max(1, xValues.Count)).Select(i => (double)i)];
        var (xMin, xMax) = Span(xs);
        var ys = series.SelectMany(s => s.Points.Select(p => p.Y)).ToList();
        var (yMin, yMax) = Span(ys.Count == 0 ? [0] : ys);
        // The y axis runs between round numbers, in about four round steps, so that its ticks read as a person would
        // label them (0, 50, 100) rather than as the data's extremes happen to fall.
        var step = NiceStep((yMax - yMin) / 4);
        yMin = Math.Floor(yMin / step) * step;
        yMax = Math.Ceiling(yMax / step) * step;
        var ticks = (int)Math.Round((yMax - yMin) / step);
        var plotWidth = Width - Left - Right;
        // Categorical positions sit inside the frame, half a step from each edge.
        double Px(double x) => numeric
            ? Left + (x - xMin) / (xMax - xMin) * plotWidth
            : Left + (x + 0.5) / Math.Max(1, xValues.Count) * plotWidth;
        double Py(double y) => Top + (yMax - y) / (yMax - yMin) * PlotHeight;
        var height = Top + PlotHeight + AxisSpace + LegendLine * series.Count + 8;
        var label = unit.Length > 0 ? $"{measurement} ({unit})" : measurement;

        var svg = new StringBuilder();
        svg.Append("<svg class=\"chart\" role=\"img\" viewBox=\"0 0 ").Append(N(Width)).Append(' ').Append(N(height))
            .Append("\" width=\"").Append(N(Width)).Append("\" height=\"").Append(N(height)).Append("\" aria-label=\"")
            .Append(E($"{label} against {xName}")).Append("\" data-x-parameter=\"").Append(E(xName)).Append("\">");
        svg.Append("<rect class=\"frame\" x=\"").Append(N(Left)).Append("\" y=\"").Append(N(Top)).Append("\" width=\"").Append(N(plotWidth))
            .Append("\" height=\"").Append(N(PlotHeight)).Append("\" fill=\"none\" stroke=\"#d0d7de\"/>");

        // A tick and a grid line per step.
        for (var i = 0; i <= ticks; i++)
        {
            var y = Math.Round((yMin + i * step) / step) * step;
            var py = Py(y);
            svg.Append("<line class=\"grid\" x1=\"").Append(N(Left)).Append("\" x2=\"").Append(N(Left + plotWidth)).Append("\" y1=\"").Append(N(py))
                .Append("\" y2=\"").Append(N(py)).Append("\" stroke=\"#eaeef2\"/>");
            svg.Append("<text class=\"tick\" x=\"").Append(N(Left - 6)).Append("\" y=\"").Append(N(py + 4)).Append("\" text-anchor=\"end\" font-size=\"11\">")
                .Append(E(y.ToString("G6", CultureInfo.InvariantCulture))).Append("</text>");
        }
        // One x tick per value of the parameter: a sweep has few, and each is a value that was run.
        foreach (var x in xValues.Distinct())
        {
            var px = Px(XOf(x));
            svg.Append("<line x1=\"").Append(N(px)).Append("\" x2=\"").Append(N(px)).Append("\" y1=\"").Append(N(Top + PlotHeight))
                .Append("\" y2=\"").Append(N(Top + PlotHeight + 4)).Append("\" stroke=\"#57606a\"/>");
            svg.Append("<text class=\"tick\" x=\"").Append(N(px)).Append("\" y=\"").Append(N(Top + PlotHeight + 17)).Append("\" text-anchor=\"middle\" font-size=\"11\">")
                .Append(E(x)).Append("</text>");
        }
        svg.Append("<text class=\"axis-label\" x=\"").Append(N(Left + plotWidth / 2)).Append("\" y=\"").Append(N(Top + PlotHeight + 34))
            .Append("\" text-anchor=\"middle\" font-size=\"12\">").Append(E(xName)).Append("</text>");
        svg.Append("<text class=\"axis-label\" x=\"14\" y=\"").Append(N(Top + PlotHeight / 2)).Append("\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 14 ")
            .Append(N(Top + PlotHeight / 2)).Append(")\">").Append(E(label)).Append("</text>");

        for (var s = 0; s < series.Count; s++)
        {
            var color = Palette[s % Palette.Length];
            // Left to right, so that the line joins neighbouring values of the parameter.
            var points = series[s].Points.OrderBy(p => XOf(p.X)).ToList();
            svg.Append("<g class=\"series\" data-series=\"").Append(E(series[s].Label)).Append("\">");
            if (points.Count > 1)
            {
                svg.Append("<polyline class=\"line\" fill=\"none\" stroke=\"").Append(color).Append("\" stroke-width=\"2\" points=\"")
                    .Append(string.Join(" ", points.Select(p => $"{N(Px(XOf(p.X)))},{N(Py(p.Y))}"))).Append("\"/>");
            }
            foreach (var (x, y) in points)
            {
                svg.Append("<circle class=\"point\" cx=\"").Append(N(Px(XOf(x)))).Append("\" cy=\"").Append(N(Py(y))).Append("\" r=\"3.5\" fill=\"").Append(color)
                    .Append("\" data-x=\"").Append(E(x)).Append("\" data-y=\"").Append(y.ToString("R", CultureInfo.InvariantCulture)).Append("\"><title>")
                    .Append(E($"{series[s].Label}; {xName}={x}: {y.ToString("G6", CultureInfo.InvariantCulture)}{(unit.Length > 0 ? " " + unit : "")}")).Append("</title></circle>");
            }
            svg.Append("</g>");
        }

        // The legend under the axis label, one line per series: a swatch of its colour and its label.
        svg.Append("<g class=\"legend\">");
        for (var s = 0; s < series.Count; s++)
        {
            var y = Top + PlotHeight + AxisSpace + LegendLine * s + 6;
            svg.Append("<line x1=\"").Append(N(Left)).Append("\" x2=\"").Append(N(Left + 22)).Append("\" y1=\"").Append(N(y)).Append("\" y2=\"").Append(N(y))
                .Append("\" stroke=\"").Append(Palette[s % Palette.Length]).Append("\" stroke-width=\"2\"/>");
            svg.Append("<circle cx=\"").Append(N(Left + 11)).Append("\" cy=\"").Append(N(y)).Append("\" r=\"3.5\" fill=\"").Append(Palette[s % Palette.Length]).Append("\"/>");
            svg.Append("<text x=\"").Append(N(Left + 30)).Append("\" y=\"").Append(N(y + 4)).Append("\" font-size=\"12\">").Append(E(series[s].Label)).Append("</text>");
        }
        return svg.Append("</g></svg>").ToString();
    }

    /// <summary>A parameter value as a number, as the matrix wrote it (invariant culture, so "1,5" is not one).</summary>
    public static bool TryNumber(string text, out double value) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value) && double.IsFinite(value);

    private static int IndexOf(IReadOnlyList<string> values, string value)
    {
        for (var i = 0; i < values.Count; i++)
        {
            if (values[i] == value)
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>1, 2 or 5 times a power of ten: the round step nearest above <paramref name="raw"/>.</summary>
    private static double NiceStep(double raw)
    {
        var power = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        var f = raw / power;
        return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * power;
    }

    /// <summary>The smallest and largest value, widened when they are equal so that a scale never divides by zero.</summary>
    private static (double Min, double Max) Span(IReadOnlyCollection<double> values)
    {
        var min = values.Min();
        var max = values.Max();
        if (max > min)
        {
            return (min, max);
        }
        var half = min == 0 ? 1 : Math.Abs(min) * 0.1;
        return (min - half, max + half);
    }

    private static string N(double v) => v.ToString("0.#", CultureInfo.InvariantCulture);

    private static string E(string s) => WebUtility.HtmlEncode(s);
}
