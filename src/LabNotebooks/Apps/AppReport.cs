using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using LabKernel.Experiments;

namespace LabNotebooks;

/// <summary>How a file-based app's run went, for the head of its report.</summary>
/// <param name="App">The app's name (<c>01-live-snapshot-integrity</c>).</param>
/// <param name="Title">The notebook's title (its first markdown heading), or the app's name.</param>
/// <param name="Arguments">The parameters it was given (<c>NAME=VALUE</c>).</param>
/// <param name="Started">When <see cref="ConsoleRun.Start(string[], string?)"/> was called.</param>
/// <param name="Finished">When <see cref="ConsoleRun.Exit"/> was called.</param>
/// <param name="ExitCode">The code the app exits with.</param>
internal sealed record AppRunInfo(string App, string Title, IReadOnlyList<string> Arguments, DateTimeOffset Started, DateTimeOffset Finished, int ExitCode)
{
    /// <summary>The exception no cell caught, as the app printed it, when a step failed; null otherwise.</summary>
    public string? Failure { get; init; }
}

/// <summary>
/// A file-based app's HTML report, the counterpart of <c>lab run</c>'s: one standalone file that works offline. The
/// title, the findings first (a reader skims verdicts, then the plots), how the run went, then every output the app
/// showed with <see cref="ConsoleRun.display{T}"/>, in order: HTML as LabNotebooks' formatters made it (they encode
/// what they show), plotly figures drawn by the plotly.js Plotly.NET bundles, inlined once, anything else as text.
/// </summary>
internal static class AppReport
{
    /// <summary>Writes the report to <paramref name="path"/> (its folder made if need be), through a temporary file.</summary>
    public static void Write(string path, string html)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = full + $".{Environment.ProcessId}.tmp";
        File.WriteAllText(tmp, html, new UTF8Encoding(false));
        File.Move(tmp, full, overwrite: true);
    }

    /// <summary>The report's HTML.</summary>
    /// <param name="run">How the run went.</param>
    /// <param name="findings">The findings shown (each distinct claim, observation and verdict once).</param>
    /// <param name="outputs">Each output shown, as its MIME bundle (MIME type to text; JSON types hold JSON text).</param>
    /// <param name="measurements">The measurements shown (each name once); none when omitted.</param>
    public static string Render(AppRunInfo run, IReadOnlyList<Finding> findings, IReadOnlyList<IReadOnlyDictionary<string, string>> outputs, IReadOnlyList<Measurement>? measurements = null)
    {
        var body = new StringBuilder();
        var plots = new StringBuilder();
        var plotCount = 0;
        body.Append("<header><h1 class=\"title\">").Append(E(run.Title)).Append("</h1>");
        if (findings.Count > 0)
        {
            body.Append(FindingsTable.ToReportHtml(findings));
        }
        body.Append(FindingsTable.ToReportHtml(measurements ?? []));
        body.Append(RunMetadata(run, findings));
        body.Append("</header>\n<main>\n");
        foreach (var output in outputs)
        {
            body.Append("<section class=\"cell code\"><div class=\"outputs\"><div class=\"output display\">");
            if (output.TryGetValue(MimeTypes.Plotly, out var figureJson) && JsonNode.Parse(figureJson) is JsonObject figure)
            {
                var id = $"lab-plot-{++plotCount}";
                body.Append("<div class=\"plot\" id=\"").Append(id).Append("\"></div>");
                var json = figure.ToJsonString().Replace("</", "<\\/", StringComparison.Ordinal);
                plots.Append("(function () { var f = ").Append(json).Append("; Plotly.newPlot('").Append(id)
                    .Append("', f.data || [], f.layout || {}, {responsive: true, displaylogo: false}); })();\n");
            }
            else if (output.TryGetValue(MimeTypes.Html, out var html))
            {
                body.Append("<div class=\"html\">").Append(html).Append("</div>");
            }
            else
            {
                body.Append("<pre>").Append(E(output.TryGetValue(MimeTypes.PlainText, out var text) ? text : "")).Append("</pre>");
            }
            body.Append("</div></div></section>\n");
        }
        if (run.Failure is { } failure)
        {
            // Last, where the run stopped, as lab run's report shows the failing cell's error.
            body.Append("<section class=\"cell code status-error\" id=\"lab-failure\"><div class=\"outputs\"><div class=\"output error\"><div class=\"ename\">failed</div><pre>")
                .Append(E(failure)).Append("</pre></div></div></section>\n");
        }
        body.Append("</main>\n");

        var page = new StringBuilder();
        page.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"")
            .Append(E(run.App)).Append(" (LabNotebooks.ConsoleRun)\">\n<title>").Append(E(run.Title)).Append("</title>\n<style>\n").Append(ReportStyle.Css).Append("</style>\n");
        if (plotCount > 0)
        {
            // Once per report, the plotly.js Plotly.NET bundles: no network needed.
            page.Append(PlotlyJs.ScriptElement()).Append('\n');
        }
        page.Append("</head>\n<body>\n").Append(body);
        if (plots.Length > 0)
        {
            page.Append("<script>\n").Append(plots).Append("</script>\n");
        }
        return page.Append("</body>\n</html>\n").ToString();
    }

    private static string RunMetadata(AppRunInfo run, IReadOnlyList<Finding> findings)
    {
        var unexpected = findings.Where(f => f.IsUnexpectedRefutation).Select(f => f.Claim).Distinct().ToList();
        var rows = new List<(string, string)>
        {
            ("status", run.Failure is not null ? "failed" : run.ExitCode == ConsoleRun.RefutedFinding ? "refuted" : "ok"),
            ("exit code", run.ExitCode.ToString(CultureInfo.InvariantCulture)),
            ("findings", ConsoleRun.FindingsText(findings) + (unexpected.Count > 0 ? $"; unexpectedly refuted: {string.Join("; ", unexpected)}" : "")),
            ("app", run.App),
            ("started", run.Started.ToString("O", CultureInfo.InvariantCulture)),
            ("finished", run.Finished.ToString("O", CultureInfo.InvariantCulture)),
            ("duration (s)", (run.Finished - run.Started).TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture)),
            ("lab version", typeof(AppReport).Assembly.GetName().Version?.ToString() ?? ""),
            ("host", Environment.MachineName),
        };
        if (run.Arguments.Count > 0)
        {
            rows.Add(("parameters", string.Join(", ", run.Arguments)));
        }
        var sb = new StringBuilder("<table class=\"run-meta\"><tbody>");
        foreach (var (label, value) in rows)
        {
            sb.Append("<tr><th>").Append(E(label)).Append("</th><td>").Append(E(value)).Append("</td></tr>");
        }
        return sb.Append("</tbody></table>").ToString();
    }

    private static string E(string s) => WebUtility.HtmlEncode(s);
}
