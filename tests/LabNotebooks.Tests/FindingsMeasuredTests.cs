using System.Text.Json.Nodes;
using LabKernel.Experiments;

namespace LabNotebooks.Tests;

/// <summary>
/// Measurements wherever findings are shown: the findings MIME JSON <c>lab run</c> reads, the "Measured" table under
/// the findings table (HTML and text, the text being what the .csx twins and file-based apps print), and the report
/// section; and findings without measurements shown exactly as before.
/// </summary>
public sealed class FindingsMeasuredTests
{
    private static Findings Measured()
    {
        var findings = new Findings();
        findings.Check("the chain has 7 layers", true, "7");
        findings.Measure("randread_iops_deepest", 812.5, "IOPS");
        findings.Measure("chain_layers", 7);
        return findings;
    }

    [Fact]
    public void Given_findings_with_measurements_When_written_as_the_findings_MIME_type_Then_the_JSON_carries_each_name_value_and_unit_in_order()
    {
        var json = JsonNode.Parse(NotebookFormatters.TryFormat(Measured())![MimeTypes.Findings])!;

        Assert.Equal("the chain has 7 layers", json["findings"]![0]!["claim"]!.GetValue<string>());
        var measured = json["measurements"]!.AsArray();
        Assert.Equal(["randread_iops_deepest", "chain_layers"], measured.Select(m => m!["name"]!.GetValue<string>()));
        Assert.Equal([812.5, 7.0], measured.Select(m => m!["value"]!.GetValue<double>()));
        Assert.Equal(["IOPS", ""], measured.Select(m => m!["unit"]!.GetValue<string>()));
    }

    [Fact]
    public void Given_findings_without_measurements_When_written_as_the_findings_MIME_type_Then_the_JSON_has_no_measurements_member()
    {
        var findings = new Findings();
        findings.Check("holds", true, "yes");

        var json = JsonNode.Parse(FindingsTable.ToJson(findings))!.AsObject();

        Assert.False(json.ContainsKey("measurements"));
        Assert.Equal(["findings"], json.Select(kv => kv.Key));
    }

    [Fact]
    public void Given_findings_with_measurements_When_shown_Then_a_Measured_table_follows_the_findings_table_in_HTML_and_text()
    {
        var bundle = NotebookFormatters.TryFormat(Measured())!;

        var html = bundle[MimeTypes.Html];
        var findingsAt = html.IndexOf("<caption>Findings</caption>", StringComparison.Ordinal);
        var measuredAt = html.IndexOf("<caption>Measured</caption>", StringComparison.Ordinal);
        Assert.True(findingsAt >= 0 && measuredAt > findingsAt, $"findings {findingsAt}, measured {measuredAt}");
        Assert.Contains(">randread_iops_deepest</td>", html, StringComparison.Ordinal);
        Assert.Contains(">IOPS</td>", html, StringComparison.Ordinal);

        var text = bundle[MimeTypes.PlainText];
        var lines = text.Split('\n');
        var measuredLine = Array.IndexOf(lines, "Measured");
        Assert.True(measuredLine > 0, text);
        Assert.Equal(["Name", "Value", "Unit"], lines[measuredLine + 1].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(["randread_iops_deepest", "812.5", "IOPS"], lines[measuredLine + 3].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(["chain_layers", "7"], lines[measuredLine + 4].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        // What a file-based app prints when it shows the findings.
        Assert.Equal(text, ConsoleRun.Bundle(Measured())[MimeTypes.PlainText]);
    }

    [Fact]
    public void Given_findings_without_measurements_When_shown_Then_they_look_as_they_always_did()
    {
        var findings = new Findings();
        findings.Check("holds", true, "yes");

        var bundle = NotebookFormatters.TryFormat(findings)!;

        Assert.Equal(findings.ToTable().ToHtml(), bundle[MimeTypes.Html]);
        Assert.Equal(findings.ToTable().ToText(), bundle[MimeTypes.PlainText]);
        Assert.DoesNotContain("Measured", bundle[MimeTypes.PlainText], StringComparison.Ordinal);
    }

    [Fact]
    public void Given_measurements_When_made_a_report_section_Then_each_is_a_row_with_its_exact_value_and_none_gives_no_section()
    {
        var html = FindingsTable.ToReportHtml(Measured().Measurements);

        Assert.StartsWith("<section class=\"measurements\" id=\"lab-measurements\"><h2>Measured</h2>", html, StringComparison.Ordinal);
        Assert.Contains("<tr><td>randread_iops_deepest</td><td class=\"number\">812.5</td><td>IOPS</td></tr>", html, StringComparison.Ordinal);
        Assert.Contains("<tr><td>chain_layers</td><td class=\"number\">7</td><td></td></tr>", html, StringComparison.Ordinal);
        Assert.Equal("", FindingsTable.ToReportHtml(Array.Empty<Measurement>()));
    }
}
