using LabKernel.Experiments;

namespace LabNotebooks;

/// <summary>An experiment's findings as a table (claim, observed, verdict).</summary>
public static class FindingsTable
{
    /// <summary>One row per finding, in the order they were recorded.</summary>
    public static Table ToTable(this Findings findings, string title = "Findings")
    {
        ArgumentNullException.ThrowIfNull(findings);
        return findings.Rows.ToTable(title);
    }
}
