using System.Text.Json.Nodes;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Runner;

/// <summary>
/// Verdicts that can fail a run: a claim refuted that the notebook did not declare an expected outcome makes
/// `lab run` exit with 4 and name it; a declared one does not; the report's header counts the verdicts.
/// </summary>
public sealed class FindingsVerdictTests
{
    private const string Header = "#!csharp\n\n#r \"nuget: LabKernel, 0.1.0\"\n#r \"nuget: LabNotebooks, 0.1.0\"\nusing LabKernel.Experiments;\nusing LabNotebooks;\n\n#!csharp\n\n";

    private static async Task<(int Exit, JsonNode Lab, string Report)> RunAsync(string cell)
    {
        using var scratch = TempDir("verdicts");
        var input = Path.Combine(scratch.Path, "verdicts.dib");
        await File.WriteAllTextAsync(input, Header + cell + "\n");
        var output = Path.Combine(scratch.Path, "out.ipynb");
        var report = Path.Combine(scratch.Path, "report.html");
        var exit = await Lab("run", input, "-o", output, "--report", report, "--no-progress");
        return (exit, ReadJson(output)["metadata"]!["lab"]!, await File.ReadAllTextAsync(report));
    }

    [Fact]
    public async Task Given_a_claim_refuted_that_the_notebook_did_not_expect_When_run_Then_lab_run_exits_4_naming_it()
    {
        var (exit, lab, report) = await RunAsync("var f = new Findings();\nf.Check(\"the copy is whole\", true, \"yes\");\nf.Check(\"the writer was not disturbed\", false, \"it stalled\");\nf");

        Assert.Equal(4, exit);
        Assert.Equal("refuted", lab["status"]!.GetValue<string>());
        Assert.Equal(1, lab["findings"]!["confirmed"]!.GetValue<int>());
        Assert.Equal(["the writer was not disturbed"], lab["findings"]!["unexpected"]!.AsArray().Select(c => c!.GetValue<string>()));
        Assert.Contains("1 confirmed, 1 refuted", report, StringComparison.Ordinal);
        Assert.Contains("unexpectedly refuted: the writer was not disturbed", report, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Given_a_refutation_the_notebook_declared_expected_When_run_Then_the_run_succeeds_and_the_header_counts_it()
    {
        var (exit, lab, report) = await RunAsync("var f = new Findings();\nf.Check(\"k > 0\", false, \"k = 0: page cache\", refutationExpected: true);\nf.Note(\"dirty\", \"5 MiB\");\nf");

        Assert.Equal(0, exit);
        Assert.Equal(1, lab["findings"]!["refuted_expected"]!.GetValue<int>());
        Assert.Empty(lab["findings"]!["unexpected"]!.AsArray());
        Assert.Contains("1 refuted (expected), 1 info", report, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Given_a_notebook_that_measures_beside_a_confirmed_claim_When_run_Then_the_metadata_and_the_report_carry_the_numbers_and_the_exit_is_0()
    {
        // Needs the packed LabKernel with Findings.Measure (the notebook takes it from the local package source).
        var (exit, lab, report) = await RunAsync("var f = new Findings();\nf.Check(\"the copy is whole\", true, \"yes\");\nf.Measure(\"lines_in_new_top\", 4004001, \"lines\");\nf.Measure(\"ratio\", 0.5);\nf");

        Assert.Equal(0, exit);
        Assert.Equal(4004001, lab["findings"]!["measurements"]!["lines_in_new_top"]!.GetValue<double>());
        Assert.Equal(0.5, lab["findings"]!["measurements"]!["ratio"]!.GetValue<double>());
        Assert.Equal("lines", lab["findings"]!["units"]!["lines_in_new_top"]!.GetValue<string>());
        Assert.Contains("<tr><td>lines_in_new_top</td><td class=\"number\">4004001</td><td>lines</td></tr>", report, StringComparison.Ordinal);
        Assert.Contains("1 confirmed", report, StringComparison.Ordinal);
    }
}
