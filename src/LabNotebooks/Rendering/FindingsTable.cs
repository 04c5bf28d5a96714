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
