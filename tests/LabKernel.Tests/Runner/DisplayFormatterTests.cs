using System.Text.Json.Nodes;
using LabNotebooks;
using LabRunner.Notebooks.Scripting;
using Plotly.NET.CSharp;

namespace LabKernel.Tests.Runner;

/// <summary>What `lab run` writes into an executed notebook for a displayed value.</summary>
public sealed class DisplayFormatterTests
{
    [Fact]
    public void Given_a_Plotly_NET_chart_When_displayed_Then_the_bundle_has_the_plotly_figure_as_json_and_light_fallbacks()
    {
        var chart = Chart.Bar<double, string, string>(new[] { 1.0 }, Keys: new[] { "x" }, Name: "b").Titled("F");

        var bundle = DisplayFormatter.Format(chart);

        var figure = Assert.IsType<JsonObject>(bundle[MimeTypes.Plotly]);
        Assert.Equal("bar", figure["data"]![0]!["type"]!.GetValue<string>());
        Assert.Contains("Chart \"F\"", bundle["text/plain"]!.GetValue<string>());
        Assert.DoesNotContain("<script", bundle["text/html"]!.GetValue<string>());
    }

    [Fact]
    public void Given_a_table_When_displayed_Then_the_convention_formatter_gives_html_and_text()
    {
        var bundle = DisplayFormatter.Format(new[] { new { A = 1 } }.ToTable("t"));

        Assert.Contains("lab-table", bundle["text/html"]!.GetValue<string>());
        Assert.StartsWith("t\n", bundle["text/plain"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public void Collections_of_records_display_as_tables_and_everything_has_text_plain()
    {
        var bundle = DisplayFormatter.Format(new[] { new { A = 1, B = "<x>" } });

        Assert.Contains("&lt;x&gt;", bundle["text/html"]!.GetValue<string>());
        Assert.Equal("[ { A = 1, B = <x> } ]", bundle["text/plain"]!.GetValue<string>());
        Assert.Equal("<null>", DisplayFormatter.Format(null)["text/plain"]!.GetValue<string>());
        Assert.Equal(["text/plain"], DisplayFormatter.Format(42).Select(kv => kv.Key));
    }

    [Fact]
    public void Asking_for_mime_types_keeps_those_and_text_plain()
    {
        var chart = Chart.Bar<double, string, string>(new[] { 1.0 }, Keys: new[] { "x" });

        var bundle = DisplayFormatter.Format(chart, [MimeTypes.Plotly]);

        Assert.Equal([MimeTypes.Plotly, "text/plain"], bundle.Select(kv => kv.Key).Order());
    }
}
