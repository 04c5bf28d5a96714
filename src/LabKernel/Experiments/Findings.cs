namespace LabKernel.Experiments;

/// <summary>One row of a findings table: what the source document claims, what this run observed, the verdict.</summary>
/// <param name="Claim">The claim, as the document makes it.</param>
/// <param name="Observed">What this run measured.</param>
/// <param name="Verdict"><c>confirmed</c>, <c>refuted</c> or <c>info</c>.</param>
/// <param name="RefutationExpected">
/// For a refuted claim: the notebook declared this outcome expected (e.g. the document's claim does not hold
/// without quiescing, and the run was not quiesced). An unexpected refutation fails <c>lab run</c>.
/// </param>
/// <param name="Hypothesis">
/// A hypothesis about the system's behaviour (e.g. "deeper chains read slower"), tested by a stated test on
/// repeated measurements: either verdict is a result of the experiment, and a refutation does not fail the run.
/// </param>
public sealed record Finding(string Claim, string Observed, string Verdict, bool RefutationExpected = false, bool Hypothesis = false)
{
    /// <summary>A refuted claim the notebook did not declare expected: what makes a run fail.</summary>
    public bool IsUnexpectedRefutation => Verdict == "refuted" && !RefutationExpected && !Hypothesis;

    /// <summary>The verdict as a table shows it: "refuted (expected)", "confirmed (hypothesis)", ...</summary>
    public string VerdictText => Hypothesis ? $"{Verdict} (hypothesis)" : RefutationExpected ? "refuted (expected)" : Verdict;
}

/// <summary>One number a run measured, kept as data beside the findings' claims.</summary>
/// <param name="Name">What was measured, unique within a run: a sweep makes it a column of its records.</param>
/// <param name="Value">The value, always finite.</param>
/// <param name="Unit">Its unit (<c>IOPS</c>, <c>ms</c>, <c>lines</c>), or empty for a count or ratio.</param>
public sealed record Measurement(string Name, double Value, string Unit = "")
{
    /// <summary>
    /// The one rule for a list of measurements (a run's, and what a runner or an app read of them): each name once,
    /// in the order first recorded, holding the value recorded last (a notebook cell run again measures again).
    /// </summary>
    public static void Keep(List<Measurement> measurements, Measurement latest)
    {
        ArgumentNullException.ThrowIfNull(measurements);
        ArgumentNullException.ThrowIfNull(latest);
        var earlier = measurements.FindIndex(m => m.Name == latest.Name);
        if (earlier < 0)
        {
            measurements.Add(latest);
        }
        else
        {
            measurements[earlier] = latest;
        }
    }
}

/// <summary>
/// The findings of an experiment. A verdict is data, not an exception: <c>confirmed</c> when the observation
/// matches the claim, <c>refuted</c> when it does not, <c>info</c> for measurements with nothing to confirm.
/// A notebook shows them by returning them from a cell; <c>lab run</c> reads them from that output, counts the
/// verdicts and exits with <c>4</c> when a claim was refuted that the notebook did not declare expected.
/// </summary>
public sealed class Findings
{
    private readonly List<Finding> _rows = [];
    private readonly List<Measurement> _measurements = [];

    public IReadOnlyList<Finding> Rows => _rows;

    /// <summary>
    /// The numbers the run measured, in the order they were recorded: data for reports and sweeps to compare across
    /// runs, never a verdict, so they do not change an exit code.
    /// </summary>
    public IReadOnlyList<Measurement> Measurements => _measurements;

    /// <summary>
    /// Records a claim checked by <paramref name="holds"/>. With <paramref name="refutationExpected"/> a refutation is
    /// an outcome the notebook explains (and another finding measures), not a failure of the run.
    /// </summary>
    public Finding Check(string claim, bool holds, string observed, bool refutationExpected = false)
    {
        var f = new Finding(claim, observed, holds ? "confirmed" : "refuted", !holds && refutationExpected);
        _rows.Add(f);
        return f;
    }

    /// <summary>
    /// Records a hypothesis judged by a stated test (<paramref name="observed"/> says the test and the values): the
    /// verdict is a measurement whichever way it comes out, so a refutation does not fail the run.
    /// </summary>
    public Finding Hypothesis(string claim, bool holds, string observed)
    {
        var f = new Finding(claim, observed, holds ? "confirmed" : "refuted", Hypothesis: true);
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

    /// <summary>
    /// Records a number the run measured. A name holds one value per run, so a sweep's column of it is not
    /// ambiguous: measuring it again (a notebook cell run a second time) replaces the earlier value in its place,
    /// and measuring it in another unit (two quantities under one name) is refused. A value that is not finite is
    /// refused too, as JSON cannot hold it and no chart can place it. A refusal is a <see cref="LabUsageException"/>.
    /// </summary>
    public Measurement Measure(string name, double value, string unit = "")
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            throw new LabUsageException("Measure: a measurement needs a name");
        }
        if (!double.IsFinite(value))
        {
            throw new LabUsageException($"Measure(\"{name}\"): {value.ToString(System.Globalization.CultureInfo.InvariantCulture)} is not a finite number");
        }
        var m = new Measurement(name, value, unit ?? "");
        if (_measurements.Find(e => e.Name == name) is { } earlier && earlier.Unit != m.Unit)
        {
            throw new LabUsageException($"Measure(\"{name}\"): already measured in {Unit(earlier.Unit)}, now in {Unit(m.Unit)} (one name is one quantity)");
        }
        Measurement.Keep(_measurements, m);
        return m;
    }

    private static string Unit(string unit) => unit.Length == 0 ? "no unit" : $"'{unit}'";

    /// <summary>True when no claim was refuted unexpectedly.</summary>
    public bool AllConfirmed => _rows.All(r => !r.IsUnexpectedRefutation);

    /// <summary>
    /// The last <paramref name="count"/> findings, to show what was added after the table was shown. The measurements
    /// are not part of it: they were shown with the table, and readers take each name once anyway.
    /// </summary>
    public Findings Tail(int count)
    {
        var tail = new Findings();
        tail._rows.AddRange(_rows.TakeLast(count));
        return tail;
    }
}
