using System.Text.RegularExpressions;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Runner;

/// <summary>The HTML report, opened in headless Chromium with no network: every figure drawn, text stays text.</summary>
public sealed partial class ReportTests
{
    [Fact]
    public async Task The_report_draws_every_figure_offline_and_shows_script_text_as_text()
    {
        using var scratch = TempDir("report");
        var dir = scratch.Path;
        var output = Path.Combine(dir, "out.ipynb");
        var report = Path.Combine(dir, "report.html");
        Assert.Equal(0, await Lab("run", Fixture("vscode.ipynb"), "-o", output, "--report", report));

        var html = await File.ReadAllTextAsync(report);
        // Nothing is loaded from the network: no external scripts, styles or images.
        Assert.DoesNotContain("<script src", html);
        Assert.DoesNotContain("<link", html);
        Assert.DoesNotMatch(SrcHttp(), html);
        // plotly.js (the bundle Plotly.NET ships) is inlined exactly once, however many charts there are.
        Assert.Equal(1, Occurrences(html, LabNotebooks.PlotlyJs.Text[..200]));
        Assert.Contains($"plotly.js v{LabNotebooks.PlotlyJs.Version}", html);
        var dom = await RenderedDomAsync(report);

        // Two figures in the notebook (a line with a shaded range, a box plot), as the C# kernel shows them (HTML with
        // their own script): both drawn by the inlined plotly.js.
        Assert.Equal(2, Regex.Matches(dom, "class=\"plot-container plotly\"").Count);
        // The shaded range and the axis title with its unit are in the drawn SVG.
        Assert.Contains("latency (ms)", dom);
        Assert.Contains("block-commit", dom);
        // Console output containing <script> is shown as text and never runs.
        Assert.Contains("&lt;script&gt;document.title = 'pwned'&lt;/script&gt;", dom);
        Assert.DoesNotContain("<title>pwned</title>", dom);
        Assert.Matches(@"<title>Write latency during a live commit</title>", dom);
        // Markdown rendered: heading, bold, list, table.
        Assert.Contains("<strong>exactly</strong>", dom);
        Assert.Contains("<li>it references <em>LabKernel</em> from the local package source that scripts/pack-labkernel registers</li>", dom);
        Assert.Contains("<th>step</th>", dom);
        // Run metadata and the code toggle.
        Assert.Contains("lab version", dom);
        Assert.Contains("id=\"lab-show-code\"", dom);
    }

    [Fact]
    public async Task Lab_report_renders_an_executed_notebook_again()
    {
        using var scratch = TempDir("report-cmd");
        var dir = scratch.Path;
        var output = Path.Combine(dir, "out.ipynb");
        Assert.Equal(0, await Lab("run", Fixture("sample.dib"), "-o", output));
        var report = Path.Combine(dir, "again.html");

        Assert.Equal(0, await Lab("report", output, "-o", report));

        var html = await File.ReadAllTextAsync(report);
        Assert.Contains("<h1 id=\"a-dib-notebook\">A .dib notebook</h1>", html);
        Assert.Contains("badge skipped", html);
        Assert.Equal(2, await Lab("report", Path.Combine(dir, "missing.ipynb"), "-o", report));
    }

    [Fact]
    public async Task The_code_toggle_hides_inputs_when_unchecked()
    {
        using var scratch = TempDir("toggle");
        var dir = scratch.Path;
        var output = Path.Combine(dir, "out.ipynb");
        Assert.Equal(0, await Lab("run", Fixture("sample.dib"), "-o", output));
        var nb = LabRunner.Notebooks.NotebookReader.Read(output);
        var html = LabRunner.Reporting.HtmlReport.Render(nb).Replace("id=\"lab-show-code\" checked", "id=\"lab-show-code\"", StringComparison.Ordinal);
        var report = Path.Combine(dir, "hidden.html");
        await File.WriteAllTextAsync(report, html);

        var dom = await RenderedDomAsync(report);

        Assert.Matches("<body class=\"hide-code\">", dom);
    }

    [Fact]
    public void Given_a_chart_the_NET_Interactive_kernel_sent_as_JSON_text_When_reported_Then_it_is_drawn_and_plotly_js_is_inlined_once()
    {
        var notebook = LabRunner.Notebooks.NotebookReader.Read(Fixture("real-kernel.executed.ipynb"));

        var html = LabRunner.Reporting.HtmlReport.Render(notebook);

        Assert.Equal(["lab-plot-1"], PlotDiv().Matches(html).Select(m => m.Groups[1].Value));
        Assert.Equal(1, Occurrences(html, LabNotebooks.PlotlyJs.Text[..200]));
        Assert.Contains("lab-table", html);
    }

    [GeneratedRegex("<div class=\"plot[^\"]*\" id=\"(lab-plot-\\d+)\"")]
    private static partial Regex PlotDiv();

    [GeneratedRegex("src=\"https?:", RegexOptions.IgnoreCase)]
    private static partial Regex SrcHttp();

    private static int Occurrences(string text, string part)
    {
        var n = 0;
        for (var i = text.IndexOf(part, StringComparison.Ordinal); i >= 0; i = text.IndexOf(part, i + part.Length, StringComparison.Ordinal))
        {
            n++;
        }
        return n;
    }
}
