using System.Net;
using System.Text;
using LabKernel.Experiments;

namespace LabNotebooks;

/// <summary>An experiment's findings as a table (claim, observed, verdict), and its measurements as another (name, value, unit).</summary>
public static class FindingsTable
{
    /// <summary>One row per finding, in the order they were recorded.</summary>
    public static Table ToTable(this Findings findings, string title = "Findings")
    {
        ArgumentNullException.ThrowIfNull(findings);
        return findings.Rows.Select(f => new { f.Claim, f.Observed, Verdict = f.VerdictText }).ToTable(title);
    }

    /// <summary>The measurements, one row each (name, value, unit), in the order they were recorded.</summary>
    public static Table ToMeasuredTable(this Findings findings, string title = "Measured")
    {
        ArgumentNullException.ThrowIfNull(findings);
        return new Table(["Name", "Value", "Unit"], findings.Measurements.Select(m => new object?[] { m.Name, m.Value, m.Unit }), title);
    }

    /// <summary>
    /// How a notebook shows findings: the findings table, and under it the "Measured" table when the run measured
    /// anything (a run without measurements looks as it always did).
    /// </summary>
    public static string ToHtml(Findings findings)
    {
        ArgumentNullException.ThrowIfNull(findings);
        var html = findings.ToTable().ToHtml();
        return findings.Measurements.Count == 0 ? html : html + findings.ToMeasuredTable().ToHtml();
    }

    /// <summary>The text counterpart of <see cref="ToHtml(Findings)"/>, for terminals and file-based apps.</summary>
    public static string ToText(Findings findings)
    {
        ArgumentNullException.ThrowIfNull(findings);
        var text = findings.ToTable().ToText();
        return findings.Measurements.Count == 0 ? text : text + "\n\n" + findings.ToMeasuredTable().ToText();
    }

    /// <summary>
    /// The findings as a report's first section, as <c>lab run</c>'s report shows them (<see cref="ReportStyle"/>):
    /// claim, observed, verdict, each row classed by its verdict so an unexpected refutation stands out.
    /// </summary>
    public static string ToReportHtml(IEnumerable<Finding> findings)
    {
        ArgumentNullException.ThrowIfNull(findings);
        var sb = new StringBuilder("<section class=\"findings\" id=\"lab-findings\"><h2>Findings</h2><table class=\"findings\"><thead><tr><th>claim</th><th>observed</th><th>verdict</th></tr></thead><tbody>");
        foreach (var f in findings)
        {
            var kind = f.IsUnexpectedRefutation ? "unexpected" : f.Verdict == "refuted" ? "refuted-expected" : f.Verdict == "confirmed" ? "confirmed" : "info";
            sb.Append("<tr class=\"verdict-").Append(kind).Append("\"><td>").Append(WebUtility.HtmlEncode(f.Claim)).Append("</td><td>").Append(WebUtility.HtmlEncode(f.Observed))
              .Append("</td><td class=\"verdict\">").Append(WebUtility.HtmlEncode(f.VerdictText)).Append("</td></tr>");
        }
        return sb.Append("</tbody></table></section>").ToString();
    }

    /// <summary>
    /// The measurements as a report section under the findings (name, value, unit), as <c>lab run</c>'s report shows
    /// them; empty when there are none.
    /// </summary>
    public static string ToReportHtml(IEnumerable<Measurement> measurements)
    {
        ArgumentNullException.ThrowIfNull(measurements);
        var list = measurements.ToList();
        if (list.Count == 0)
        {
            return "";
        }
        var sb = new StringBuilder("<section class=\"measurements\" id=\"lab-measurements\"><h2>Measured</h2><table class=\"measurements\"><thead><tr><th>name</th><th>value</th><th>unit</th></tr></thead><tbody>");
        foreach (var m in list)
        {
            sb.Append("<tr><td>").Append(WebUtility.HtmlEncode(m.Name)).Append("</td><td class=\"number\">")
              .Append(WebUtility.HtmlEncode(m.Value.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))
              .Append("</td><td>").Append(WebUtility.HtmlEncode(m.Unit)).Append("</td></tr>");
        }
        return sb.Append("</tbody></table></section>").ToString();
    }

    /// <summary>The findings as <see cref="MimeTypes.Findings"/> JSON, for runners and reports to count.</summary>
    public static string ToJson(Findings findings)
    {
        ArgumentNullException.ThrowIfNull(findings);
        var rows = new System.Text.Json.Nodes.JsonArray();
        foreach (var f in findings.Rows)
        {
            rows.Add(new System.Text.Json.Nodes.JsonObject
            {
                ["claim"] = f.Claim,
                ["observed"] = f.Observed,
                ["verdict"] = f.Verdict,
                ["refutation_expected"] = f.RefutationExpected,
                ["hypothesis"] = f.Hypothesis,
            });
        }
        var json = new System.Text.Json.Nodes.JsonObject { ["findings"] = rows };
        // Only when there are any, so that a run without measurements writes what it always wrote.
        if (findings.Measurements.Count > 0)
        {
            var measured = new System.Text.Json.Nodes.JsonArray();
            foreach (var m in findings.Measurements)
            {
                measured.Add(new System.Text.Json.Nodes.JsonObject { ["name"] = m.Name, ["value"] = m.Value, ["unit"] = m.Unit });
            }
            json["measurements"] = measured;
        }
        return json.ToJsonString();
    }
}
