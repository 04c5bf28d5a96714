using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LabNotebooks;
using LabRunner.Notebooks;

namespace LabRunner.Reporting;

/// <summary>What a report leaves out, as nbconvert's <c>--no-input</c> and <c>--no-prompt</c>.</summary>
public sealed record ReportOptions
{
    /// <summary>No code cell source (and no code toggle, no input prompt); outputs stay. A code cell with nothing to show is left out.</summary>
    public bool NoInput { get; init; }

    /// <summary>No <c>[N]</c> execution-count prompts.</summary>
    public bool NoPrompt { get; init; }
}

/// <summary>
/// Renders an executed notebook as one standalone HTML file that works offline: the title, the findings table (a
/// reader skims verdicts first), run metadata, the error banner, markdown rendered, code (shown or hidden by a
/// toggle), outputs (text escaped, HTML tables as they are, plotly figures drawn by the plotly.js Plotly.NET
/// bundles, inlined once).
/// </summary>
public static class HtmlReport
{
    public static void Write(Notebook notebook, string path, ReportOptions? options = null)
    {
        var html = Render(notebook, options);
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = full + $".{Environment.ProcessId}.tmp";
        File.WriteAllText(tmp, html, new UTF8Encoding(false));
        File.Move(tmp, full, overwrite: true);
    }

    public static string Render(Notebook notebook, ReportOptions? options = null)
    {
        options ??= new ReportOptions();
        var body = new StringBuilder();
        var plots = new StringBuilder();
        var plotCount = 0;
        var lab = notebook.Metadata["lab"] as JsonObject;
        var title = notebook.Cells.Where(c => c.Kind == CellKind.Markdown && !c.HasTag(NotebookRunner.BannerTag) && !c.HasTag(NotebookRunner.AnchorTag))
            .Select(c => c.Source.Split('\n').FirstOrDefault(l => l.TrimStart().StartsWith("# ", StringComparison.Ordinal)))
            .FirstOrDefault(l => l is not null)?.Trim()[2..].Trim()
            ?? Path.GetFileNameWithoutExtension(notebook.SourcePath);

        body.Append("<header><h1 class=\"title\">").Append(E(title)).Append("</h1>");
        var findings = FindingsSummary.From(notebook);
        if (findings is not null)
        {
            body.Append(FindingsTable(findings));
            // The Measured section as an app's report shows it (nothing when the notebook measured nothing).
            body.Append(LabNotebooks.FindingsTable.ToReportHtml(findings.Measurements));
        }
        if (lab is not null || findings is not null)
        {
            body.Append(RunMetadata(lab ?? new JsonObject(), findings));
        }
        if (!options.NoInput)
        {
            body.Append("<label class=\"toggle\"><input type=\"checkbox\" id=\"lab-show-code\" checked> show code</label>");
        }
        body.Append("</header>\n<main>\n");

        var codeNumber = 0;
        foreach (var cell in notebook.Cells)
        {
            if (cell.Kind == CellKind.Markdown)
            {
                var banner = cell.HasTag(NotebookRunner.BannerTag);
                var anchor = cell.HasTag(NotebookRunner.AnchorTag);
                body.Append("<section class=\"cell markdown").Append(banner ? " error-banner" : anchor ? " error-anchor" : "").Append("\" id=\"cell-").Append(E(cell.Id)).Append("\">")
                    .Append(Markdown.ToHtml(cell.Source)).Append("</section>\n");
                continue;
            }
            if (cell.Kind == CellKind.Raw)
            {
                body.Append("<section class=\"cell raw\" id=\"cell-").Append(E(cell.Id)).Append("\"><pre>").Append(E(cell.Source)).Append("</pre></section>\n");
                continue;
            }
            codeNumber++;
            var run = CellRun.Of(cell);
            var status = run.Status;
            if (options.NoInput && cell.Outputs.Count == 0 && status == "ok")
            {
                continue; // nothing to show without its code (nbconvert would show an empty cell)
            }
            body.Append("<section class=\"cell code status-").Append(E(status)).Append("\" id=\"cell-").Append(E(cell.Id)).Append("\">");
            body.Append("<div class=\"cell-head\">");
            if (!options.NoPrompt && !options.NoInput)
            {
                body.Append("<span class=\"prompt\">[").Append(cell.ExecutionCount?.ToString(CultureInfo.InvariantCulture) ?? " ").Append("]</span> ");
            }
            body.Append("<span class=\"badge ").Append(E(status)).Append("\">").Append(E(status)).Append("</span> ")
                .Append("<span class=\"lang\">").Append(E(cell.Language ?? "")).Append("</span>");
            if (run.Seconds is { } seconds)
            {
                body.Append(" <span class=\"duration\">").Append(seconds.ToString("0.000", CultureInfo.InvariantCulture)).Append(" s</span>");
            }
            if (run.SkipReason is { } reason)
            {
                body.Append(" <span class=\"skip\">").Append(E(reason)).Append("</span>");
            }
            if (cell.HasTag(Parameters.ParametersTag) || cell.HasTag(Parameters.InjectedTag))
            {
                body.Append(" <span class=\"tag\">").Append(cell.HasTag(Parameters.InjectedTag) ? "injected parameters" : "parameters").Append("</span>");
            }
            body.Append("</div>");
            if (!options.NoInput)
            {
                body.Append("<pre class=\"input\"><code>").Append(E(cell.Source)).Append("</code></pre>");
            }
            if (cell.Outputs.Count > 0)
            {
                body.Append("<div class=\"outputs\">");
                foreach (var output in cell.Outputs)
                {
                    RenderOutput(output, body, plots, ref plotCount);
                }
                body.Append("</div>");
            }
            body.Append("</section>\n");
        }
        body.Append("</main>\n");

        var page = new StringBuilder();
        page.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"lab run\">\n<title>")
            .Append(E(title)).Append("</title>\n<style>\n").Append(Css).Append("</style>\n");
        if (plotCount > 0)
        {
            // Once per report, the plotly.js Plotly.NET bundles: no network needed.
            page.Append(PlotlyJs.ScriptElement()).Append('\n');
        }
        page.Append("</head>\n<body>\n").Append(body);
        page.Append("<script>\n").Append(ToggleScript).Append(plots).Append("</script>\n</body>\n</html>\n");
        return page.ToString();
    }

    /// <summary>Every finding the notebook showed, first in the report: claim, observed, verdict (unexpected refutations marked).</summary>
    private static string FindingsTable(FindingsSummary findings)
    {
        var sb = new StringBuilder("<section class=\"findings\" id=\"lab-findings\"><h2>Findings</h2><table class=\"findings\"><thead><tr><th>claim</th><th>observed</th><th>verdict</th></tr></thead><tbody>");
        foreach (var row in findings.Rows)
        {
            var kind = row.IsUnexpectedRefutation ? "unexpected" : row.Verdict == "refuted" ? "refuted-expected" : row.Verdict == "confirmed" ? "confirmed" : "info";
            sb.Append("<tr class=\"verdict-").Append(kind).Append("\"><td>").Append(E(row.Claim)).Append("</td><td>").Append(E(row.Observed))
              .Append("</td><td class=\"verdict\">").Append(E(row.VerdictText)).Append("</td></tr>");
        }
        return sb.Append("</tbody></table></section>").ToString();
    }

    private static string RunMetadata(JsonObject lab, FindingsSummary? findings)
    {
        var rows = new List<(string, string)>();
        void Add(string label, string key)
        {
            if (lab[key] is JsonValue v && v.ToString() is { Length: > 0 } s)
            {
                rows.Add((label, s));
            }
        }
        Add("status", "status");
        Add("exit code", "exit_code");
        if (findings is { Total: > 0 } f)
        {
            rows.Add(("findings", f.Text + (f.Unexpected.Count > 0 ? $"; unexpectedly refuted: {string.Join("; ", f.Unexpected)}" : "")));
        }
        Add("notebook", "input");
        Add("started", "started");
        Add("finished", "finished");
        Add("duration (s)", "duration");
        Add("lab version", "lab_version");
        Add("host", "host");
        Add("os", "os");
        Add("qemu", "qemu_version");
        Add("libvirt", "libvirt_version");
        Add("accelerator", "accelerator");
        if (lab["parameters"] is JsonObject p && p.Count > 0)
        {
            rows.Add(("parameters", string.Join(", ", p.Select(kv => $"{kv.Key} = {kv.Value?.ToJsonString() ?? "null"}"))));
        }
        var sb = new StringBuilder("<table class=\"run-meta\"><tbody>");
        foreach (var (label, value) in rows)
        {
            sb.Append("<tr><th>").Append(E(label)).Append("</th><td>").Append(E(value)).Append("</td></tr>");
        }
        return sb.Append("</tbody></table>").ToString();
    }

    private static void RenderOutput(JsonObject output, StringBuilder body, StringBuilder plots, ref int plotCount)
    {
        switch (output["output_type"]?.GetValue<string>())
        {
            case "stream":
                var name = output["name"]?.GetValue<string>() ?? "stdout";
                body.Append("<pre class=\"output stream ").Append(E(name)).Append("\">").Append(E(Text(output["text"]))).Append("</pre>");
                break;
            case "error":
                var trace = (output["traceback"] as JsonArray ?? []).Select(t => t?.ToString() ?? "");
                body.Append("<div class=\"output error\"><div class=\"ename\">").Append(E(Text(output["ename"]))).Append(": ").Append(E(Text(output["evalue"]).Split('\n')[0])).Append("</div>")
                    .Append("<pre>").Append(E(string.Join('\n', trace))).Append("</pre></div>");
                break;
            case "display_data" or "execute_result":
                var data = output["data"] as JsonObject ?? [];
                body.Append("<div class=\"output display\">");
                if (MimeJson.AsObject(data[MimeTypes.Plotly]) is { } figure)
                {
                    var id = $"lab-plot-{++plotCount}";
                    body.Append("<div class=\"plot\" id=\"").Append(id).Append("\"></div>");
                    var json = figure.ToJsonString().Replace("</", "<\\/", StringComparison.Ordinal);
                    plots.Append("(function () { var f = ").Append(json).Append("; Plotly.newPlot('").Append(id)
                        .Append("', f.data || [], f.layout || {}, {responsive: true, displaylogo: false}); })();\n");
                }
                else if (data[MimeTypes.Html] is { } html)
                {
                    // The C# kernel shows a figure as its HTML only (as VS Code gets it); its script draws with the
                    // plotly.js the report inlines.
                    if (Text(html).Contains("Plotly.newPlot", StringComparison.Ordinal))
                    {
                        plotCount++;
                    }
                    body.Append("<div class=\"html\">").Append(Text(html)).Append("</div>");
                }
                else if (data["image/png"] is { } png)
                {
                    body.Append("<img alt=\"figure\" src=\"data:image/png;base64,").Append(E(Text(png).Replace("\n", "", StringComparison.Ordinal))).Append("\">");
                }
                else if (data["image/svg+xml"] is { } svg)
                {
                    body.Append("<img alt=\"figure\" src=\"data:image/svg+xml;base64,").Append(Convert.ToBase64String(Encoding.UTF8.GetBytes(Text(svg)))).Append("\">");
                }
                else if (data[MimeTypes.Markdown] is { } md)
                {
                    body.Append(Markdown.ToHtml(Text(md)));
                }
                else if (data[MimeTypes.Json] is { } json)
                {
                    body.Append("<pre class=\"json\">").Append(E(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }))).Append("</pre>");
                }
                else
                {
                    body.Append("<pre>").Append(E(Text(data[MimeTypes.PlainText]))).Append("</pre>");
                }
                body.Append("</div>");
                break;
        }
    }

    /// <summary>An nbformat multi-line string: a string or a list of strings.</summary>
    private static string Text(JsonNode? node) => NotebookReader.ReadSource(node) ?? node?.ToString() ?? "";

    private static string E(string s) => WebUtility.HtmlEncode(s);

    private const string ToggleScript = """
        (function () {
          var box = document.getElementById('lab-show-code');
          if (!box) { return; }
          function apply() { document.body.classList.toggle('hide-code', !box.checked); }
          box.addEventListener('change', apply);
          apply();
        })();

        """;

    /// <summary>The reports' styling (LabNotebooks' <see cref="ReportStyle"/>, which the apps' reports share), and the sweep's summary page (<c>lab sweep</c>).</summary>
    internal const string Css = ReportStyle.Css;
}
