using System.Text.Json.Nodes;
using LabKernel.Experiments;
using LabRunner.Notebooks;
using LabRunner.Reporting;

namespace LabKernel.Tests.Runner;

/// <summary>
/// Measurements as <c>lab run</c> reads them from an executed notebook's findings output (the MIME JSON LabNotebooks
/// writes), without running one: the summary the run's metadata and a sweep's record take them from, and the HTML
/// report's "Measured" section; an output from before measurements reads as none.
/// </summary>
public sealed class MeasurementReportTests
{
    /// <summary>An executed notebook whose cells showed <paramref name="outputs"/>, each as the findings MIME type.</summary>
    private static Notebook Executed(params string[] outputs)
    {
        var cells = new JsonArray([.. outputs.Select((json, i) => (JsonNode)new JsonObject
        {
            ["cell_type"] = "code",
            ["id"] = $"c{i}",
            ["metadata"] = new JsonObject(),
            ["execution_count"] = i + 1,
            ["source"] = "findings",
            ["outputs"] = new JsonArray(new JsonObject
            {
                ["output_type"] = "execute_result",
                ["execution_count"] = i + 1,
                ["metadata"] = new JsonObject(),
                ["data"] = new JsonObject { ["text/plain"] = "findings", [FindingsSummary.MimeType] = JsonNode.Parse(json) },
            }),
        })]);
        var notebook = new JsonObject
        {
            ["cells"] = cells,
            ["metadata"] = new JsonObject { ["kernelspec"] = new JsonObject { ["name"] = ".net-csharp", ["display_name"] = ".NET (C#)", ["language"] = "C#" } },
            ["nbformat"] = 4,
            ["nbformat_minor"] = 5,
        };
        return NotebookReader.ParseIpynb("executed.ipynb", notebook.ToJsonString());
    }

    [Fact]
    public void Given_findings_shown_twice_with_measurements_When_summarized_Then_each_name_is_read_once_and_the_verdict_counts_are_unchanged()
    {
        var findings = new Findings();
        findings.Check("holds", true, "yes");
        findings.Measure("lines_in_new_top", 4004001, "lines");
        var first = LabNotebooks.FindingsTable.ToJson(findings);
        findings.Measure("snapshot_duration", 12.25, "ms");

        var summary = FindingsSummary.From(Executed(first, LabNotebooks.FindingsTable.ToJson(findings)))!;

        Assert.Equal(1, summary.Confirmed);
        Assert.Equal(1, summary.Total);
        Assert.Equal([new Measurement("lines_in_new_top", 4004001, "lines"), new Measurement("snapshot_duration", 12.25, "ms")], summary.Measurements);
        var json = summary.ToJson();
        Assert.Equal(4004001, json["measurements"]!["lines_in_new_top"]!.GetValue<double>());
        Assert.Equal("ms", json["units"]!["snapshot_duration"]!.GetValue<string>());
    }

    [Fact]
    public void Given_a_measurement_shown_then_measured_again_and_shown_When_summarized_Then_the_value_shown_last_is_kept_in_its_place()
    {
        var findings = new Findings();
        findings.Measure("lines_in_new_top", 100, "lines");
        findings.Measure("snapshot_duration", 12.25, "ms");
        var first = LabNotebooks.FindingsTable.ToJson(findings);
        // The cell run again: Findings keeps the newer value, and so must what the runner reads from the outputs.
        findings.Measure("lines_in_new_top", 4004001, "lines");

        var summary = FindingsSummary.From(Executed(first, LabNotebooks.FindingsTable.ToJson(findings)))!;

        Assert.Equal([new Measurement("lines_in_new_top", 4004001, "lines"), new Measurement("snapshot_duration", 12.25, "ms")], summary.Measurements);
        Assert.Equal(findings.Measurements, summary.Measurements);
    }

    [Fact]
    public void Given_a_findings_output_from_before_measurements_When_summarized_and_reported_Then_there_are_none_and_no_Measured_section()
    {
        var summary = FindingsSummary.From(Executed("""{"findings": [{"claim": "holds", "observed": "yes", "verdict": "confirmed", "refutation_expected": false}]}"""))!;

        Assert.Empty(summary.Measurements);
        Assert.False(summary.ToJson().ContainsKey("measurements"));
        Assert.DoesNotContain("lab-measurements", HtmlReport.Render(Executed("""{"findings": []}""")), StringComparison.Ordinal);
    }

    [Fact]
    public void Given_measurements_edited_by_hand_into_something_else_When_summarized_Then_what_is_not_a_named_number_is_left_out()
    {
        var summary = FindingsSummary.From(Executed("""{"findings": [], "measurements": [{"name": "ok", "value": 2, "unit": "s"}, {"name": "text", "value": "3"}, {"value": 4}, 5]}"""))!;

        Assert.Equal([new Measurement("ok", 2, "s")], summary.Measurements);
    }

    [Fact]
    public void Given_a_notebook_that_showed_findings_with_measurements_When_reported_Then_a_Measured_section_follows_the_findings_table()
    {
        var findings = new Findings();
        findings.Check("holds", true, "yes");
        findings.Measure("randread_iops_deepest", 812.5, "IOPS");

        var html = HtmlReport.Render(Executed(LabNotebooks.FindingsTable.ToJson(findings)));

        var findingsAt = html.IndexOf("id=\"lab-findings\"", StringComparison.Ordinal);
        var measuredAt = html.IndexOf("id=\"lab-measurements\"", StringComparison.Ordinal);
        Assert.True(findingsAt > 0 && measuredAt > findingsAt, $"findings {findingsAt}, measured {measuredAt}");
        Assert.Contains("<tr><td>randread_iops_deepest</td><td class=\"number\">812.5</td><td>IOPS</td></tr>", html, StringComparison.Ordinal);
    }
}
