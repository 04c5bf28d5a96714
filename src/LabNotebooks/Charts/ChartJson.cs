using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Plotly.NET;

namespace LabNotebooks;

/// <summary>
/// What a Plotly.NET chart renders to in the lab: the plotly figure JSON (<c>application/vnd.plotly.v1+json</c>),
/// a light HTML and text summary for front ends that cannot draw it, and a standalone HTML page.
/// </summary>
public static class ChartJson
{
    /// <summary>
    /// The figure as plotly's renderers take it: <c>{"data": [...], "layout": {...}}</c>, from Plotly.NET's own
    /// serialization. The fixed default width Plotly.NET writes (600 px) is dropped so a figure fills its output.
    /// </summary>
    public static JsonObject ToPlotlyJson(GenericChart chart)
    {
        ArgumentNullException.ThrowIfNull(chart);
        var all = JsonNode.Parse(GenericChart.toJson(chart))!.AsObject();
        var layout = all["layout"]?.DeepClone().AsObject() ?? [];
        layout.Remove("width");
        return new JsonObject
        {
            ["data"] = all["data"]?.DeepClone() ?? new JsonArray(),
            ["layout"] = layout,
        };
    }

    /// <summary>
    /// One paragraph saying what the chart shows: title, each trace (type, name, number of points), axis titles,
    /// shaded windows. It is the text/plain of a chart, and what a reader without plotly sees.
    /// </summary>
    public static string Describe(GenericChart chart)
    {
        var figure = ToPlotlyJson(chart);
        var layout = figure["layout"]!.AsObject();
        var sb = new StringBuilder("Chart");
        if (TitleOf(layout["title"]) is { } title)
        {
            sb.Append(" \"").Append(title).Append('"');
        }
        var traces = figure["data"]!.AsArray().OfType<JsonObject>().Select(DescribeTrace).ToList();
        sb.Append(": ").Append(traces.Count == 0 ? "no traces" : string.Join("; ", traces));
        var x = TitleOf(layout["xaxis"]?["title"]);
        var y = TitleOf(layout["yaxis"]?["title"]);
        if (x is not null || y is not null)
        {
            sb.Append(" (x: ").Append(x ?? "-").Append(", y: ").Append(y ?? "-").Append(')');
        }
        var labels = (layout["annotations"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        var windows = (layout["shapes"] as JsonArray ?? []).OfType<JsonObject>()
            .Where(s => s["type"]?.GetValue<string>() == "rect" && s["yref"]?.GetValue<string>() == "paper")
            .Select(s =>
            {
                // A window's label is the annotation placed at its start.
                var label = labels.FirstOrDefault(a => Scalar(a["x"]) == Scalar(s["x0"]))?["text"]?.ToString();
                return $"{(label is null ? "" : label + " ")}[{Scalar(s["x0"])}, {Scalar(s["x1"])}]";
            })
            .ToList();
        if (windows.Count > 0)
        {
            sb.Append("; shaded: ").Append(string.Join(", ", windows));
        }
        return sb.ToString();
    }

    /// <summary>
    /// The text/html of a chart in an executed notebook: the <see cref="Describe"/> paragraph, a few hundred bytes.
    /// Front ends that draw <c>application/vnd.plotly.v1+json</c> prefer that; plotly.js is never carried here.
    /// </summary>
    public static string ToHtmlSummary(GenericChart chart) =>
        "<div class=\"lab-chart-summary\"><p>" + ValueText.Html(Describe(chart)) + "</p></div>";

    /// <summary>A standalone HTML page drawing the chart with plotly.js inlined (works offline).</summary>
    public static string ToStandaloneHtml(GenericChart chart)
    {
        var json = ToPlotlyJson(chart).ToJsonString().Replace("</", "<\\/", StringComparison.Ordinal);
        return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">" + PlotlyJs.ScriptElement() + "</head><body>"
            + "<div id=\"chart\" style=\"width:100%\"></div><script>var f = " + json
            + "; Plotly.newPlot('chart', f.data, f.layout, {responsive: true, displaylogo: false});</script></body></html>\n";
    }

    private static string DescribeTrace(JsonObject trace)
    {
        var type = trace["type"]?.GetValue<string>() ?? "trace";
        var mode = trace["mode"]?.GetValue<string>();
        var kind = type == "scatter" ? (mode == "markers" ? "scatter" : "line") : type;
        var name = trace["name"]?.ToString();
        var n = (trace["y"] as JsonArray ?? trace["x"] as JsonArray)?.Count ?? 0;
        var unit = type == "bar" ? "bars" : "points";
        return $"{kind}{(name is null ? "" : $" \"{name}\"")} ({n.ToString(CultureInfo.InvariantCulture)} {unit})";
    }

    private static string? TitleOf(JsonNode? title) => title switch
    {
        JsonValue v => v.ToString(),
        JsonObject o => o["text"]?.ToString(),
        _ => null,
    };

    private static string Scalar(JsonNode? node) => node is JsonValue v && v.TryGetValue<double>(out var d)
        ? d.ToString("0.###", CultureInfo.InvariantCulture)
        : node?.ToString() ?? "";
}
