using LabKernel;
using LabKernel.Experiments;

namespace LabNotebooks.Tests;

/// <summary>
/// What the .csx twins and the file-based apps print and how an app ends (<see cref="ConsoleRun"/>): the exit code
/// of the findings shown, as <c>lab run</c> reads them, and one line for a usage error.
/// </summary>
public sealed class ConsoleRunTests : IDisposable
{
    public ConsoleRunTests() => ConsoleRun.Reset();

    public void Dispose() => ConsoleRun.Reset();

    [Fact]
    public void Findings_shown_confirmed_or_refuted_as_declared_end_with_0()
    {
        var findings = new Findings();
        findings.Check("holds", true, "yes");
        findings.Check("known not to hold without quiescing", false, "k = 0", refutationExpected: true);
        findings.Hypothesis("deeper is slower", false, "ranges overlap");
        findings.Note("a measurement", "42");

        ConsoleRun.display(findings);

        Assert.Equal(4, ConsoleRun.FindingsShown.Count);
        Assert.Equal(0, ConsoleRun.Exit());
    }

    [Fact]
    public void A_claim_refuted_unexpectedly_ends_with_4_as_lab_run()
    {
        var findings = new Findings();
        findings.Check("holds", true, "yes");
        ConsoleRun.display(findings);
        // Added after the table was shown: the end of the run shows them (ExperimentEnd), as FinishAsync returns it.
        findings.Check("the image is clean", false, "1 leaked cluster");
        ConsoleRun.display(new ExperimentEnd("removed", null, findings.Tail(1), []));

        Assert.Equal(2, ConsoleRun.FindingsShown.Count);
        Assert.Equal(ConsoleRun.RefutedFinding, ConsoleRun.Exit());
    }

    [Fact]
    public void The_same_findings_shown_twice_count_once()
    {
        var findings = new Findings();
        findings.Check("holds", true, "yes");

        ConsoleRun.display(findings);
        ConsoleRun.display(findings);

        Assert.Single(ConsoleRun.FindingsShown);
        Assert.Equal("findings: 1 confirmed", ConsoleRun.FindingsText(ConsoleRun.FindingsShown.ToList()));
    }

    [Fact]
    public void No_findings_shown_ends_with_0()
    {
        Assert.Equal("no findings shown", ConsoleRun.FindingsText([]));
        Assert.Equal(0, ConsoleRun.Exit());
    }

    [Fact]
    public void A_usage_error_is_one_line_and_exit_2_anything_else_exit_1_with_its_trace()
    {
        var (usageCode, usage) = ConsoleRun.Describe(new AggregateException(new LabUsageException("argument Count: 'abc'\n is not a Int64")));
        var (failCode, fail) = ConsoleRun.Describe(new InvalidOperationException("the guest went away"));

        Assert.Equal(ConsoleRun.UsageError, usageCode);
        Assert.EndsWith(": argument Count: 'abc' is not a Int64", usage, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', usage);
        Assert.Equal(ConsoleRun.Failed, failCode);
        Assert.Contains("InvalidOperationException: the guest went away", fail, StringComparison.Ordinal);
    }

    [Fact]
    public void HTML_prints_as_its_text()
    {
        Assert.Equal("a & b\nnext", ConsoleRun.HTML("<p>a &amp; b</p><b>next</b>").ToString());
    }
}
