using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using LabKernel.Reports;

namespace LabKernel.Plots;

/// <summary>
/// A plotly figure built from typed traces: lines and scatter, bars, box plots, heatmaps; a title, axis labels
/// with units, and shaded x ranges (for example the seconds a block job ran). It renders as
/// <c>application/vnd.plotly.v1+json</c> (<see cref="ToPlotlyJson"/>), as HTML that draws itself with the
/// plotly.js embedded in LabKernel (<see cref="ToHtml"/>), and as a one-paragraph text summary.
/// </summary>
/// <example><code>
/// Figure.Create("Guest write latency")
///     .XAxis("time", "s").YAxis("p99 latency", "ms")
///     .Line("before commit", seconds, p99)
///     .Shade(12.5, 19.0, "block-commit")
/// </code></example>
[TypeFormatterSource(typeof(LabFormatterSource), PreferredMimeTypes = [MimeTypes.Html, MimeTypes.PlainText])]
public sealed class Figure
{
    private readonly List<Trace> _traces = [];
    private readonly List<ShadedRange> _shaded = [];
    private static int _sequence;

    private Figure(string? title)
    {
        Title = title;
    }

    public static Figure Create(string? title = null) => new(title);

    public string? Title { get; private set; }

    public Axis? X { get; private set; }

    public Axis? Y { get; private set; }

    public int? Height { get; private set; }

    public IReadOnlyList<Trace> Traces => _traces;

    public IReadOnlyList<ShadedRange> ShadedRanges => _shaded;

    public Figure WithTitle(string title)
    {
        Title = title;
        return this;
    }

    /// <summary>Labels the x axis; the unit is shown in parentheses ("time (s)").</summary>
    public Figure XAxis(string title, string? unit = null, AxisScale scale = AxisScale.Linear)
    {
        X = new Axis(title, unit, scale);
        return this;
    }

    /// <summary>Labels the y axis; the unit is shown in parentheses ("latency (ms)").</summary>
    public Figure YAxis(string title, string? unit = null, AxisScale scale = AxisScale.Linear)
    {
        Y = new Axis(title, unit, scale);
        return this;
    }

    public Figure WithHeight(int pixels)
    {
        Height = pixels;
        return this;
    }

    public Figure Line(string name, IEnumerable<double> x, IEnumerable<double> y, bool markers = false) =>
        Add(new ScatterTrace(name, Values(x), Values(y), markers ? "lines+markers" : "lines"));

    public Figure Line(string name, IEnumerable<DateTimeOffset> x, IEnumerable<double> y, bool markers = false) =>
        Add(new ScatterTrace(name, Values(x), Values(y), markers ? "lines+markers" : "lines"));

    public Figure Scatter(string name, IEnumerable<double> x, IEnumerable<double> y) =>
        Add(new ScatterTrace(name, Values(x), Values(y), "markers"));

    public Figure Scatter(string name, IEnumerable<DateTimeOffset> x, IEnumerable<double> y) =>
        Add(new ScatterTrace(name, Values(x), Values(y), "markers"));

    public Figure Bar(string name, IEnumerable<string> categories, IEnumerable<double> values) =>
        Add(new BarTrace(name, Values(categories), Values(values)));

    public Figure Bar(string name, IEnumerable<double> x, IEnumerable<double> values) =>
        Add(new BarTrace(name, Values(x), Values(values)));

    /// <summary>A box plot of one sample (median, quartiles, whiskers, outliers).</summary>
    public Figure Box(string name, IEnumerable<double> sample) => Add(new BoxTrace(name, Values(sample)));

    /// <summary>A heatmap: <paramref name="z"/>[row, column], rows labelled by <paramref name="y"/>, columns by <paramref name="x"/>.</summary>
    public Figure Heatmap(string name, IEnumerable<string> x, IEnumerable<string> y, double[,] z)
    {
        var xs = Values(x);
        var ys = Values(y);
        if (xs.Length != z.GetLength(1) || ys.Length != z.GetLength(0))
        {
            throw new ArgumentException($"z is {z.GetLength(0)}x{z.GetLength(1)} but there are {ys.Length} row and {xs.Length} column labels", nameof(z));
        }
        return Add(new HeatmapTrace(name, xs, ys, z));
    }

    /// <summary>Shades the x range [<paramref name="start"/>, <paramref name="end"/>] across the whole plot height.</summary>
    public Figure Shade(double start, double end, string? label = null, string color = "#f2a900")
    {
        _shaded.Add(new ShadedRange(JsonValue.Create(start), JsonValue.Create(end), label, color));
        return this;
    }

    /// <summary>Shades a time range across the whole plot height.</summary>
    public Figure Shade(DateTimeOffset start, DateTimeOffset end, string? label = null, string color = "#f2a900")
    {
        _shaded.Add(new ShadedRange(TimeValue(start), TimeValue(end), label, color));
        return this;
    }

    public Figure Add(Trace trace)
    {
        ArgumentNullException.ThrowIfNull(trace);
        _traces.Add(trace);
        return this;
    }

    /// <summary>The plotly figure: <c>{"data": [...], "layout": {...}}</c>.</summary>
    public JsonObject ToPlotlyJson()
    {
        var layout = new JsonObject
        {
            ["margin"] = new JsonObject { ["t"] = Title is null ? 20 : 50, ["r"] = 20 },
        };
        if (Title is not null)
        {
            layout["title"] = new JsonObject { ["text"] = Title };
        }
        if (X is not null)
        {
            layout["xaxis"] = X.ToJson();
        }
        if (Y is not null)
        {
            layout["yaxis"] = Y.ToJson();
        }
        if (Height is { } h)
        {
            layout["height"] = h;
        }
        if (_traces.OfType<BarTrace>().Count() > 1)
        {
            layout["barmode"] = "group";
        }
        if (_shaded.Count > 0)
        {
            var shapes = new JsonArray();
            var annotations = new JsonArray();
            foreach (var s in _shaded)
            {
                shapes.Add(new JsonObject
                {
                    ["type"] = "rect",
                    ["xref"] = "x",
                    ["yref"] = "paper",
                    ["x0"] = s.Start.DeepClone(),
                    ["x1"] = s.End.DeepClone(),
                    ["y0"] = 0,
                    ["y1"] = 1,
                    ["fillcolor"] = s.Color,
                    ["opacity"] = 0.2,
                    ["layer"] = "below",
                    ["line"] = new JsonObject { ["width"] = 0 },
                });
                if (s.Label is not null)
                {
                    annotations.Add(new JsonObject
                    {
                        ["xref"] = "x",
                        ["yref"] = "paper",
                        ["x"] = s.Start.DeepClone(),
                        ["y"] = 1,
                        ["xanchor"] = "left",
                        ["yanchor"] = "bottom",
                        ["text"] = s.Label,
                        ["showarrow"] = false,
                    });
                }
            }
            layout["shapes"] = shapes;
            layout["annotations"] = annotations;
        }
        return new JsonObject
        {
            ["data"] = new JsonArray(_traces.Select(t => (JsonNode)t.ToJson()).ToArray()),
            ["layout"] = layout,
        };
    }

    /// <summary>
    /// HTML that draws the figure. With <see cref="PlotlyHtml.Embedding"/> at <see cref="PlotlyEmbedding.InlineOnce"/>
    /// (the default, for VS Code) the first figure of the process carries plotly.js itself; later ones reuse it.
    /// </summary>
    public string ToHtml() => PlotlyHtml.Render(ToPlotlyJson(), $"lab-plot-{Interlocked.Increment(ref _sequence)}-{Guid.NewGuid():N}"[..32], ToString());

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append("Figure");
        if (Title is not null)
        {
            sb.Append(" \"").Append(Title).Append('"');
        }
        sb.Append(": ").Append(string.Join("; ", _traces.Select(t => t.Describe())));
        if (X is not null || Y is not null)
        {
            sb.Append(" (x: ").Append(X?.Label ?? "-").Append(", y: ").Append(Y?.Label ?? "-").Append(')');
        }
        if (_shaded.Count > 0)
        {
            sb.Append("; shaded: ").Append(string.Join(", ", _shaded.Select(s => $"{s.Label ?? "range"} [{s.Start.ToJsonString()}, {s.End.ToJsonString()}]")));
        }
        return sb.ToString();
    }

    // Plotly draws a gap for null; NaN and infinities are not valid JSON.
    internal static JsonNode?[] Values(IEnumerable<double> v) => v.Select(d => double.IsFinite(d) ? (JsonNode)JsonValue.Create(d) : null).ToArray();

    internal static JsonNode?[] Values(IEnumerable<string> v) => v.Select(s => (JsonNode)JsonValue.Create(s)!).ToArray();

    internal static JsonNode?[] Values(IEnumerable<DateTimeOffset> v) => v.Select(t => (JsonNode?)TimeValue(t)).ToArray();

    private static JsonNode TimeValue(DateTimeOffset t) =>
        JsonValue.Create(t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture))!;
}

/// <summary>Linear or logarithmic axis.</summary>
public enum AxisScale
{
    Linear,
    Log,
}

/// <summary>An axis title and its unit.</summary>
public sealed record Axis(string Title, string? Unit = null, AxisScale Scale = AxisScale.Linear)
{
    public string Label => Unit is null ? Title : $"{Title} ({Unit})";

    internal JsonObject ToJson()
    {
        var o = new JsonObject { ["title"] = new JsonObject { ["text"] = Label } };
        if (Scale == AxisScale.Log)
        {
            o["type"] = "log";
        }
        return o;
    }
}

/// <summary>An x range shaded across the plot (a job, a snapshot, a fault injection).</summary>
public sealed record ShadedRange(JsonNode Start, JsonNode End, string? Label, string Color);

/// <summary>One plotly trace.</summary>
public abstract record Trace(string Name)
{
    public abstract JsonObject ToJson();

    internal abstract string Describe();

    private protected static JsonArray Array(JsonNode?[] values) => new(values.Select(v => v?.DeepClone()).ToArray());
}

/// <summary>A line or scatter trace (plotly <c>scatter</c>, mode lines, markers or both).</summary>
public sealed record ScatterTrace(string Name, JsonNode?[] X, JsonNode?[] Y, string Mode) : Trace(Name)
{
    public override JsonObject ToJson() => new()
    {
        ["type"] = "scatter",
        ["mode"] = Mode,
        ["name"] = Name,
        ["x"] = Array(X),
        ["y"] = Array(Y),
    };

    internal override string Describe() => $"{(Mode == "markers" ? "scatter" : "line")} \"{Name}\" ({Y.Length} points)";
}

/// <summary>A bar trace.</summary>
public sealed record BarTrace(string Name, JsonNode?[] X, JsonNode?[] Y) : Trace(Name)
{
    public override JsonObject ToJson() => new() { ["type"] = "bar", ["name"] = Name, ["x"] = Array(X), ["y"] = Array(Y) };

    internal override string Describe() => $"bar \"{Name}\" ({Y.Length} bars)";
}

/// <summary>A box plot of one sample.</summary>
public sealed record BoxTrace(string Name, JsonNode?[] Y) : Trace(Name)
{
    public override JsonObject ToJson() => new() { ["type"] = "box", ["name"] = Name, ["y"] = Array(Y), ["boxpoints"] = "outliers" };

    internal override string Describe() => $"box \"{Name}\" ({Y.Length} values)";
}

/// <summary>A heatmap; <see cref="Z"/> is indexed [row, column].</summary>
public sealed record HeatmapTrace(string Name, JsonNode?[] X, JsonNode?[] Y, double[,] Z) : Trace(Name)
{
    public override JsonObject ToJson()
    {
        var rows = new JsonArray();
        for (var r = 0; r < Z.GetLength(0); r++)
        {
            var row = new JsonArray();
            for (var c = 0; c < Z.GetLength(1); c++)
            {
                row.Add(double.IsFinite(Z[r, c]) ? JsonValue.Create(Z[r, c]) : null);
            }
            rows.Add(row);
        }
        return new JsonObject { ["type"] = "heatmap", ["name"] = Name, ["x"] = Array(X), ["y"] = Array(Y), ["z"] = rows, ["colorscale"] = "Viridis" };
    }

    internal override string Describe() => $"heatmap \"{Name}\" ({Z.GetLength(0)}x{Z.GetLength(1)})";
}
