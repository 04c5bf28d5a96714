namespace LabKernel.Experiments;

/// <summary>One row of a findings table: what the source document claims, what this run observed, the verdict.</summary>
public sealed record Finding(string Claim, string Observed, string Verdict);

/// <summary>
/// The findings of an experiment. A verdict is data, not an exception: <c>confirmed</c> when the observation
/// matches the claim, <c>refuted</c> when it does not, <c>info</c> for measurements with nothing to confirm.
/// </summary>
public sealed class Findings
{
    private readonly List<Finding> _rows = [];

    public IReadOnlyList<Finding> Rows => _rows;

    /// <summary>Records a claim checked by <paramref name="holds"/>.</summary>
    public Finding Check(string claim, bool holds, string observed)
    {
        var f = new Finding(claim, observed, holds ? "confirmed" : "refuted");
        _rows.Add(f);
        return f;
    }

    /// <summary>Records a measurement.</summary>
    public Finding Note(string what, string observed)
    {
        var f = new Finding(what, observed, "info");
        _rows.Add(f);
        return f;
    }

    public bool AllConfirmed => _rows.All(r => r.Verdict != "refuted");
}
