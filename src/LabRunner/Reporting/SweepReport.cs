using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LabRunner.Notebooks;

namespace LabRunner.Reporting;

/// <summary>
/// <c>sweep.html</c>: one table, one row per combination of a sweep (its parameters, status, host, duration, and one
/// column per finding claim with its verdict), then for each measurement a line chart of its value against one
/// parameter (<see cref="SweepChart"/>), styled as the run reports are, offline (no script, nothing fetched).
/// Made from <c>sweep.json</c>'s content.
/// </summary>
internal static class SweepReport
{
    public static void Write(JsonObject sweep, string path)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, Render(sweep), new UTF8Encoding(false));
        File.Move(tmp, path, overwrite: true);
    }

    public static string Render(JsonObject sweep)
    {
        var runs = (sweep["runs"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        var names = (sweep["matrix"] as JsonObject ?? []).Select(kv => kv.Key).ToList();
        var claims = new List<string>();
        foreach (var run in runs)
        {
            foreach (var (claim, _) in run["findings"] as JsonObject ?? [])
            {
                if (!claims.Contains(claim))
                {
                    claims.Add(claim);
                }
            }
        }
        var title = $"Sweep of {Path.GetFileName(Str(sweep["notebook"]) ?? "")}";
        var body = new StringBuilder();
        body.Append("<header><h1 class=\"title\">").Append(E(title)).Append("</h1><p>")
            .Append(E(string.Join(", ", (sweep["counts"] as JsonObject ?? []).Where(kv => kv.Value?.GetValue<int>() > 0).Select(kv => $"{kv.Value} {kv.Key}"))))
            .Append(" &middot; exit ").Append(E(sweep["exit_code"]?.ToString() ?? "")).Append(" &middot; ").Append(E(Str(sweep["finished"]) ?? ""))
            .Append("</p></header>\n<main>\n<table class=\"sweep\"><thead><tr><th>#</th>");
        foreach (var name in names)
        {
            body.Append("<th class=\"parameter\">").Append(E(name)).Append("</th>");
        }
        body.Append("<th>status</th><th>host</th><th>duration</th>");
        foreach (var claim in claims)
        {
            body.Append("<th class=\"claim\">").Append(E(claim)).Append("</th>");
        }
        body.Append("</tr></thead><tbody>\n");
        var i = 0;
        foreach (var run in runs)
        {
            var status = Str(run["status"]) ?? "not-run";
            var folder = Str(run["folder"]);
            body.Append("<tr class=\"run status-").Append(E(status)).Append("\" id=\"").Append(E(Str(run["id"]) ?? "")).Append("\"><td>");
            body.Append(folder is null ? (++i).ToString(System.Globalization.CultureInfo.InvariantCulture)
                : $"<a href=\"{E(folder)}/report.html\">{++i}</a>");
            body.Append("</td>");
            foreach (var name in names)
            {
                body.Append("<td class=\"parameter\">").Append(E(Str(run["parameters"]?[name]) ?? "")).Append("</td>");
            }
            body.Append("<td class=\"status\"><span class=\"badge ").Append(E(status)).Append("\">").Append(E(status)).Append("</span>");
            if (Str(run["error"]) is { } error)
            {
                body.Append("<div class=\"error\">").Append(E(error)).Append("</div>");
            }
            body.Append("</td><td>").Append(E(Str(run["host"]) ?? "")).Append("</td><td class=\"duration\">")
                .Append(run["duration"] is JsonValue d ? E(d.GetValue<double>().ToString("0.0", System.Globalization.CultureInfo.InvariantCulture) + " s") : "")
                .Append("</td>");
            foreach (var claim in claims)
            {
                var verdict = Str(run["findings"]?[claim]);
                var kind = verdict switch
                {
                    null => "none",
                    "confirmed" or "confirmed (hypothesis)" => "confirmed",
                    "refuted" => "unexpected",
                    "refuted (expected)" or "refuted (hypothesis)" => "refuted-expected",
                    _ => "info",
                };
                body.Append("<td class=\"verdict verdict-").Append(kind).Append("\">").Append(E(verdict ?? "")).Append("</td>");
            }
            body.Append("</tr>\n");
        }
        body.Append("</tbody></table>\n");
        body.Append(Charts(sweep, runs));
        body.Append("</main>\n");
        return new StringBuilder("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"lab sweep\">\n<title>")
            .Append(E(title)).Append("</title>\n<style>\n").Append(HtmlReport.Css).Append(SweepCss).Append("</style>\n</head>\n<body>\n")
            .Append(body).Append("</body>\n</html>\n").ToString();
    }

    /// <summary>
    /// The parameter a sweep's charts use as x when <c>--plot-x</c> does not say: the first whose values are all numbers
    /// (a size, a count, a depth reads best as a line), else the first; null for a matrix without parameters.
    /// </summary>
    public static string? DefaultPlotX(IReadOnlyList<SweepAxis> axes) =>
        (axes.FirstOrDefault(a => a.Values.All(v => SweepChart.TryNumber(v, out _))) ?? axes.FirstOrDefault())?.Name;

    /// <summary>
    /// One chart per measurement name, in the order the runs first measured them: its value against the x parameter,
    /// one series per combination of the other parameters. Only runs that ran to the end (ok or refuted) are drawn: a
    /// failed run's numbers, if any, are of a run that did not finish.
    /// </summary>
    private static string Charts(JsonObject sweep, IReadOnlyList<JsonObject> runs)
    {
        var axes = (sweep["matrix"] as JsonObject ?? [])
            .Select(kv => new SweepAxis(kv.Key, [.. (kv.Value as JsonArray ?? []).Select(v => Str(v) ?? v?.ToString() ?? "")]))
            .ToList();
        var finished = runs.Where(r => Str(r["status"]) is "ok" or "refuted").ToList();
        var names = finished.SelectMany(r => (r["measurements"] as JsonObject ?? []).Select(kv => kv.Key)).Distinct().ToList();
        if (names.Count == 0 || axes.Count == 0)
        {
            return "";
        }
        var xName = Str(sweep["plot_x"]) is { } chosen && axes.Any(a => a.Name == chosen) ? chosen : DefaultPlotX(axes)!;
        var xValues = axes.First(a => a.Name == xName).Values;
        var others = axes.Where(a => a.Name != xName).Select(a => a.Name).ToList();
        var sb = new StringBuilder("<section class=\"charts\" id=\"lab-charts\"><h2>Measurements</h2>\n");
        foreach (var name in names)
        {
            var series = new List<(string Label, List<(string X, double Y)> Points)>();
            foreach (var run in finished)
            {
                if (run["measurements"]?[name] is not JsonValue v || v.GetValueKind() != JsonValueKind.Number || Str(run["parameters"]?[xName]) is not { } x)
                {
                    continue;
                }
                var label = others.Count == 0 ? "all runs" : string.Join(", ", others.Select(o => $"{o}={Str(run["parameters"]?[o])}"));
                var index = series.FindIndex(s => s.Label == label);
                if (index < 0)
                {
                    series.Add((label, []));
                    index = series.Count - 1;
                }
                series[index].Points.Add((x, v.GetValue<double>()));
            }
            var unit = Str(sweep["units"]?[name]) ?? "";
            sb.Append("<figure class=\"chart\"><figcaption>").Append(E(unit.Length > 0 ? $"{name} ({unit})" : name)).Append(" against ").Append(E(xName)).Append("</figcaption>")
                .Append(SweepChart.Render(name, unit, xName, xValues, [.. series.Select(s => new SweepSeries(s.Label, s.Points))]))
                .Append("</figure>\n");
        }
        return sb.Append("</section>\n").ToString();
    }

    private const string SweepCss = """
        body { max-width: none; }
        table.sweep td.verdict { white-space: nowrap; font-weight: 600; }
        table.sweep th.claim { font-weight: 500; font-size: .85em; max-width: 16em; }
        td.verdict-confirmed { color: #1a7f37; }
        td.verdict-unexpected { background: #ffebe9; color: #cf222e; }
        td.verdict-refuted-expected, td.verdict-info { color: #57606a; }
        .badge.refuted, .badge.failed { background: #cf222e; } .badge.interrupted, .badge.not-run { background: #8c959f; }
        tr.status-refuted td.status, tr.status-failed td.status { background: #ffebe9; }
        td.status .error { font-size: .8em; color: #a40e26; max-width: 30em; }
        section.charts figure.chart { margin: 1.5em 0; }
        section.charts figcaption { font-weight: 600; margin-bottom: .4em; }
        section.charts svg.chart { max-width: 100%; height: auto; font-family: inherit; }

        """;

    private static string? Str(JsonNode? node) => node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    private static string E(string s) => WebUtility.HtmlEncode(s);
}
