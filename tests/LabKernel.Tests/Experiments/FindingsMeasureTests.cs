using System.Text.Json.Nodes;
using LabKernel.Experiments;

namespace LabKernel.Tests.Experiments;

/// <summary>
/// <see cref="Findings.Measure"/>: numbers kept beside the claims, each name once per run (a sweep's column of it must
/// not be ambiguous), finite only, and never a verdict; and artifacts.json, which carries them with the findings.
/// </summary>
public sealed class FindingsMeasureTests
{
    [Fact]
    public void Given_findings_When_numbers_are_measured_Then_they_are_kept_in_order_with_their_units_and_no_verdict_changes()
    {
        var findings = new Findings();
        findings.Check("the copy is whole", true, "yes");

        var iops = findings.Measure("randread_iops", 1234.5, "IOPS");
        findings.Measure("layers", 7);

        Assert.Equal(new Measurement("randread_iops", 1234.5, "IOPS"), iops);
        Assert.Equal([new Measurement("randread_iops", 1234.5, "IOPS"), new Measurement("layers", 7, "")], findings.Measurements);
        Assert.Single(findings.Rows);
        Assert.True(findings.AllConfirmed);
    }

    [Fact]
    public void Given_a_name_already_measured_When_measured_again_Then_the_new_value_replaces_it_in_its_place()
    {
        var findings = new Findings();
        findings.Measure("lines", 10, "lines");
        findings.Measure("seconds", 2, "s");

        // A notebook cell run a second time measures again: the newer value is the run's.
        findings.Measure("lines", 11, "lines");

        Assert.Equal([new Measurement("lines", 11, "lines"), new Measurement("seconds", 2, "s")], findings.Measurements);
    }

    [Fact]
    public void Given_a_name_measured_in_one_unit_When_measured_in_another_Then_a_one_line_usage_exception_names_both_and_the_first_value_stays()
    {
        var findings = new Findings();
        findings.Measure("lines", 10, "lines");

        var e = Assert.Throws<LabUsageException>(() => findings.Measure("lines", 11, "MiB"));

        Assert.Equal("Measure(\"lines\"): already measured in 'lines', now in 'MiB' (one name is one quantity)", e.Message);
        Assert.Equal([new Measurement("lines", 10, "lines")], findings.Measurements);
    }

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(double.NegativeInfinity)]
    public void Given_a_value_that_is_not_finite_When_measured_Then_a_one_line_usage_exception_refuses_it(double value)
    {
        var findings = new Findings();

        var e = Assert.Throws<LabUsageException>(() => findings.Measure("iops", value));

        Assert.Contains("not a finite number", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Empty(findings.Measurements);
    }

    [Theory]
    [InlineData("")]
    [InlineData("  ")]
    public void Given_no_name_When_measured_Then_a_usage_exception_refuses_it(string name)
    {
        Assert.Throws<LabUsageException>(() => new Findings().Measure(name, 1));
    }

    [Fact]
    public void Given_a_refuted_claim_and_measurements_When_judged_Then_only_the_claim_decides()
    {
        var findings = new Findings();
        findings.Measure("iops", 0, "IOPS");
        Assert.True(findings.AllConfirmed);

        findings.Check("the writer ran to the end", false, "it stalled");

        Assert.False(findings.AllConfirmed);
        Assert.Single(findings.Measurements);
    }

    [Fact]
    public async Task Given_a_kept_run_with_measurements_When_its_manifest_is_written_Then_artifacts_json_holds_them_beside_the_findings()
    {
        var output = Directory.CreateTempSubdirectory("run-measure-").FullName;
        try
        {
            var run = ExperimentRun.Create("04-x", keepArtifacts: true, outputFolder: output);
            run.Findings.Check("the chain has 7 layers", true, "7");
            run.Findings.Measure("probe_median_iops_deepest", 812.25, "IOPS");
            run.Findings.Measure("chain_layers_deepest", 7, "layers");

            var manifest = JsonNode.Parse(await File.ReadAllTextAsync(await run.WriteManifestAsync()))!;

            Assert.Equal("the chain has 7 layers", manifest["findings"]![0]!["Claim"]!.GetValue<string>());
            var measured = manifest["measurements"]!.AsArray();
            Assert.Equal(["probe_median_iops_deepest", "chain_layers_deepest"], measured.Select(m => m!["Name"]!.GetValue<string>()));
            Assert.Equal(812.25, measured[0]!["Value"]!.GetValue<double>());
            Assert.Equal("IOPS", measured[0]!["Unit"]!.GetValue<string>());
            Assert.Equal(7, measured[1]!["Value"]!.GetValue<double>());
        }
        finally
        {
            Directory.Delete(output, true);
        }
    }

    [Fact]
    public async Task Given_a_run_that_measured_nothing_When_its_manifest_is_written_Then_its_measurements_are_an_empty_list()
    {
        var output = Directory.CreateTempSubdirectory("run-measure-").FullName;
        try
        {
            var run = ExperimentRun.Create("04-x", keepArtifacts: true, outputFolder: output);

            var manifest = JsonNode.Parse(await File.ReadAllTextAsync(await run.WriteManifestAsync()))!;

            Assert.Empty(manifest["measurements"]!.AsArray());
        }
        finally
        {
            Directory.Delete(output, true);
        }
    }
}
