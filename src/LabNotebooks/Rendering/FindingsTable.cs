using System.Net;
using System.Text;
using LabKernel.Experiments;

namespace LabNotebooks;

/// <summary>An experiment's findings as a table (claim, observed, verdict).</summary>
public static class FindingsTable
{
    /// <summary>One row per finding, in the order they were recorded.</summary>
    public static Table ToTable(this Findings findings, string title = "Findings")
    {
        ArgumentNullException.ThrowIfNull(findings);
        return findings.Rows.Select(f => new { f.Claim, f.Observed, Verdict = f.VerdictText }).ToTable(title);
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
        return new System.Text.Json.Nodes.JsonObject { ["findings"] = rows }.ToJsonString();
    }
}
