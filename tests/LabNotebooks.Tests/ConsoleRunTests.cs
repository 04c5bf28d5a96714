using System.Text.RegularExpressions;
using LabKernel;
using LabKernel.Experiments;

namespace LabNotebooks.Tests;

/// <summary>
/// What the .csx twins and the file-based apps print and how an app ends (<see cref="ConsoleRun"/>): the exit code
/// of the findings shown, as <c>lab run</c> reads them, and one line for a usage error; and the HTML report an app
/// writes when it ends (findings first, then each output shown, offline).
/// </summary>
public sealed partial class ConsoleRunTests : IDisposable
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

    [Fact]
    public void Given_an_app_that_showed_a_table_HTML_a_chart_and_findings_When_it_exits_Then_its_report_has_the_findings_first_then_each_output_in_order_offline()
    {
        var dir = Path.Combine(Path.GetTempPath(), "lab-app-report-tests", Guid.NewGuid().ToString("N"));
        try
        {
            var (plan, parameters) = ConsoleRun.PlanReport(["Count=5", "--report=out/app.html"], "01 · A <live> snapshot", dir);
            ConsoleRun.ReportTo(plan);
            var findings = new Findings();
            findings.Check("the writer ran to the end", true, "4,000,000 lines");
            findings.Check("overlay1 holds a prefix", false, "a gap at line 7");

            ConsoleRun.display(new[] { new { Layer = "overlay1", Lines = 12 } }.ToTable("Layers read"));
            ConsoleRun.display(ConsoleRun.HTML("<p>a note from the cell</p>"));
            ConsoleRun.display(Figures.Lines("Lines written", "s", "lines", [new Series("num.txt", [0.0, 1.0], [0.0, 10.0])]));
            ConsoleRun.display(findings);
            var code = ConsoleRun.Exit();

            // The exit code is the findings' (a claim refuted unexpectedly: 4), report or not.
            Assert.Equal(ConsoleRun.RefutedFinding, code);
            Assert.Equal(["Count=5"], parameters);
            var html = File.ReadAllText(Path.Combine(dir, "out", "app.html"));
            Assert.Contains("<title>01 &#183; A &lt;live&gt; snapshot</title>", html, StringComparison.Ordinal);
            var findingsAt = html.IndexOf("id=\"lab-findings\"", StringComparison.Ordinal);
            var tableAt = html.IndexOf("Layers read", StringComparison.Ordinal);
            var noteAt = html.IndexOf("<p>a note from the cell</p>", StringComparison.Ordinal);
            var plotAt = html.IndexOf("<div class=\"plot\" id=\"lab-plot-1\">", StringComparison.Ordinal);
            var findingsShownAt = html.IndexOf("<section class=\"cell code\"", plotAt, StringComparison.Ordinal);
            Assert.True(findingsAt > 0 && tableAt > findingsAt && noteAt > tableAt && plotAt > noteAt && findingsShownAt > plotAt,
                $"findings {findingsAt}, table {tableAt}, note {noteAt}, plot {plotAt}, findings shown {findingsShownAt}");
            Assert.Contains("<tr class=\"verdict-unexpected\"><td>overlay1 holds a prefix</td>", html, StringComparison.Ordinal);
            Assert.Equal(4, Regex.Matches(html, "<section class=\"cell code\"").Count);
            // plotly.js inlined once, the figure drawn with it; nothing fetched (plotly.js's own code names its site
            // in strings, so the page is checked without it).
            var plotlyJs = PlotlyJs.ScriptElement();
            var inlined = html.IndexOf(plotlyJs, StringComparison.Ordinal);
            Assert.True(inlined > 0 && html.IndexOf(plotlyJs, inlined + 1, StringComparison.Ordinal) < 0, "plotly.js inlined once");
            Assert.Contains("Plotly.newPlot('lab-plot-1'", html, StringComparison.Ordinal);
            var page = html.Remove(inlined, plotlyJs.Length);
            Assert.DoesNotMatch(ExternalUrl(), page);
            Assert.DoesNotContain("<link", page, StringComparison.Ordinal);
            Assert.DoesNotContain("<script src", page, StringComparison.Ordinal);
        }
        finally
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    [Fact]
    public void Given_report_options_on_an_apps_command_line_When_Start_reads_them_Then_they_are_not_parameters_and_a_bare_report_option_is_refused()
    {
        var dir = Path.Combine(Path.GetTempPath(), "lab-app-report-tests");

        var (byDefault, parameters) = ConsoleRun.PlanReport(["Count=5"], null, dir);
        var (named, _) = ConsoleRun.PlanReport(["--report=/tmp/r.html", "Count=5"], "T", dir);
        var (off, rest) = ConsoleRun.PlanReport(["--report=r.html", "Count=5", "--no-report"], "T", dir);

        Assert.EndsWith(".html", byDefault!.Path, StringComparison.Ordinal);
        Assert.Equal(dir, Path.GetDirectoryName(byDefault.Path));
        Assert.Equal("/tmp/r.html", named!.Path);
        Assert.Null(off);
        Assert.Equal(["Count=5"], parameters);
        Assert.Equal(["Count=5"], rest);
        ScriptArgs.CheckNames(rest, ["Count"]);
        Assert.Throws<LabUsageException>(() => ConsoleRun.PlanReport(["--report"], null, dir));
        Assert.Throws<LabUsageException>(() => ConsoleRun.PlanReport(["--report="], null, dir));
    }

    [Fact]
    public void Given_a_csx_twin_that_never_calls_Start_When_Exit_is_called_Then_no_report_is_written()
    {
        var before = Directory.GetFiles(Environment.CurrentDirectory, "*.html");
        var findings = new Findings();
        findings.Check("holds", true, "yes");

        ConsoleRun.display(findings);
        var code = ConsoleRun.Exit();

        Assert.Equal(0, code);
        Assert.Equal(before, Directory.GetFiles(Environment.CurrentDirectory, "*.html"));
    }

    [Fact]
    public void Given_a_report_path_that_cannot_be_written_When_the_app_exits_Then_stderr_says_so_and_the_exit_code_is_the_findings()
    {
        var dir = Path.Combine(Path.GetTempPath(), "lab-app-report-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var error = Console.Error;
        try
        {
            // A file where the report's folder would be.
            File.WriteAllText(Path.Combine(dir, "blocker"), "");
            var (plan, _) = ConsoleRun.PlanReport(["--report=blocker/app.html"], null, dir);
            ConsoleRun.ReportTo(plan);
            var findings = new Findings();
            findings.Check("holds", false, "no");
            ConsoleRun.display(findings);
            var captured = new StringWriter();
            Console.SetError(captured);

            var code = ConsoleRun.Exit();

            Assert.Equal(ConsoleRun.RefutedFinding, code);
            Assert.Contains($": could not write the report {Path.Combine(dir, "blocker", "app.html")}: ", captured.ToString(), StringComparison.Ordinal);
            Assert.Contains("findings: 1 refuted (exit 4)", captured.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            Console.SetError(error);
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Given_an_app_whose_step_fails_after_showing_findings_When_it_ends_on_the_exception_Then_the_report_is_written_with_the_failure_last_and_it_exits_1()
    {
        var dir = Path.Combine(Path.GetTempPath(), "lab-app-report-tests", Guid.NewGuid().ToString("N"));
        try
        {
            var (plan, _) = ConsoleRun.PlanReport([], "T", dir);
            ConsoleRun.ReportTo(plan);
            var findings = new Findings();
            findings.Check("holds", true, "yes");
            ConsoleRun.display(findings);

            var code = ConsoleRun.Fail(new InvalidOperationException("the guest <went> away"));

            Assert.Equal(ConsoleRun.Failed, code);
            var html = File.ReadAllText(plan!.Path);
            var findingsAt = html.IndexOf("id=\"lab-findings\"", StringComparison.Ordinal);
            var shownAt = html.IndexOf("<section class=\"cell code\"", StringComparison.Ordinal);
            var failureAt = html.IndexOf("id=\"lab-failure\"", StringComparison.Ordinal);
            Assert.True(findingsAt > 0 && shownAt > findingsAt && failureAt > shownAt, $"findings {findingsAt}, shown {shownAt}, failure {failureAt}");
            Assert.Contains("InvalidOperationException: the guest &lt;went&gt; away", html, StringComparison.Ordinal);
            Assert.Contains("<tr><th>status</th><td>failed</td></tr>", html, StringComparison.Ordinal);

            // A usage error: nothing ran, no report.
            File.Delete(plan.Path);
            Assert.Equal(ConsoleRun.UsageError, ConsoleRun.Fail(new LabUsageException("unknown parameter 'X'")));
            Assert.False(File.Exists(plan.Path));
        }
        finally
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    [Fact]
    public void Given_a_measurement_shown_then_measured_again_and_shown_Then_the_app_keeps_the_value_shown_last_in_its_place()
    {
        var findings = new Findings();
        findings.Measure("lines_in_new_top", 100, "lines");
        findings.Measure("snapshot_duration", 9.5, "ms");
        ConsoleRun.display(findings);
        // A step run again measures again: the app's report holds what Findings holds, the newer value.
        findings.Measure("lines_in_new_top", 4_000_000, "lines");
        ConsoleRun.display(findings);

        Assert.Equal(findings.Measurements, ConsoleRun.MeasurementsShown);
    }

    [Fact]
    public void Given_an_app_that_showed_findings_with_measurements_twice_When_it_exits_Then_its_report_has_a_Measured_section_under_the_findings_and_the_exit_code_ignores_them()
    {
        var dir = Path.Combine(Path.GetTempPath(), "lab-app-report-tests", Guid.NewGuid().ToString("N"));
        try
        {
            var (plan, _) = ConsoleRun.PlanReport([], "T", dir);
            ConsoleRun.ReportTo(plan);
            var findings = new Findings();
            findings.Check("holds", true, "yes");
            findings.Measure("lines_in_new_top", 4_000_000, "lines");
            ConsoleRun.display(findings);
            findings.Measure("snapshot_duration", 9.5, "ms");
            ConsoleRun.display(findings);

            Assert.Equal(0, ConsoleRun.Exit());

            Assert.Equal(["lines_in_new_top", "snapshot_duration"], ConsoleRun.MeasurementsShown.Select(m => m.Name));
            var html = File.ReadAllText(plan!.Path);
            var findingsAt = html.IndexOf("id=\"lab-findings\"", StringComparison.Ordinal);
            var measuredAt = html.IndexOf("id=\"lab-measurements\"", StringComparison.Ordinal);
            var shownAt = html.IndexOf("<section class=\"cell code\"", StringComparison.Ordinal);
            Assert.True(findingsAt > 0 && measuredAt > findingsAt && shownAt > measuredAt, $"findings {findingsAt}, measured {measuredAt}, shown {shownAt}");
            Assert.Contains("<tr><td>lines_in_new_top</td><td class=\"number\">4000000</td><td>lines</td></tr>", html, StringComparison.Ordinal);
            Assert.Single(Regex.Matches(html, "<td>snapshot_duration</td><td class=\"number\">"));
        }
        finally
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    [GeneratedRegex("""(src|href)\s*=\s*["']?\s*(https?:)?//""", RegexOptions.IgnoreCase)]
    private static partial Regex ExternalUrl();
}
