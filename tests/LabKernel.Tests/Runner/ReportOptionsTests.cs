using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LabRunner.Notebooks;
using LabRunner.Reporting;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Runner;

/// <summary>
/// `lab report` as nbconvert's HTML export is used: --no-input, --no-prompt, NAME.html beside the notebook by default;
/// and the findings table first, before plots and the rest. Notebooks made in memory: no kernel, no guest.
/// </summary>
public sealed partial class ReportOptionsTests
{
    private const string Figure = """{"data":[{"type":"scatter","x":[1,2],"y":[3,4]}],"layout":{"title":{"text":"latency"}}}""";

    private static Notebook Executed()
    {
        var title = new NotebookCell(CellKind.Markdown, "# Snapshot while writing", null, id: "m1");
        var quiet = new NotebookCell(CellKind.Code, "var lab = await Lab.StartAsync(\"01\");", Languages.CSharp, id: "c1") { ExecutionCount = 1 };
        var plot = new NotebookCell(CellKind.Code, "Chart.Line<double, double, string>(x, y)", Languages.CSharp, id: "c2") { ExecutionCount = 2 };
        plot.Outputs.Add(new JsonObject
        {
            ["output_type"] = "display_data", ["metadata"] = new JsonObject(),
            ["data"] = new JsonObject { ["application/vnd.plotly.v1+json"] = JsonNode.Parse(Figure), ["text/plain"] = "Chart \"latency\"" },
        });
        var printed = new NotebookCell(CellKind.Code, "Console.WriteLine(\"writer at 1200 lines\");", Languages.CSharp, id: "c3") { ExecutionCount = 3 };
        printed.Outputs.Add(new JsonObject { ["output_type"] = "stream", ["name"] = "stdout", ["text"] = "writer at 1200 lines\n" });
        var findings = new NotebookCell(CellKind.Code, "run.Findings", Languages.CSharp, id: "c4") { ExecutionCount = 4 };
        findings.Outputs.Add(new JsonObject
        {
            ["output_type"] = "execute_result", ["execution_count"] = 4, ["metadata"] = new JsonObject(),
            ["data"] = new JsonObject
            {
                [FindingsSummary.MimeType] = new JsonObject
                {
                    ["findings"] = new JsonArray(
                        new JsonObject { ["claim"] = "the writer runs to the end", ["observed"] = "exit 0", ["verdict"] = "confirmed" },
                        new JsonObject { ["claim"] = "overlay1 holds a prefix", ["observed"] = "k = 0", ["verdict"] = "refuted", ["refutation_expected"] = true },
                        new JsonObject { ["claim"] = "the image checks clean", ["observed"] = "2 leaked clusters", ["verdict"] = "refuted" }),
                },
                ["text/plain"] = "Findings (3)",
            },
        });
        return new Notebook("01-live.ipynb", NotebookFormat.Ipynb, [], [title, quiet, plot, printed, findings]);
    }

    [Fact]
    public void Given_no_input_When_reported_Then_no_code_no_toggle_and_no_prompt_remain_while_every_output_does()
    {
        var html = HtmlReport.Render(Executed(), new ReportOptions { NoInput = true });

        Assert.DoesNotContain("class=\"input\"", html);
        Assert.DoesNotContain("Lab.StartAsync", html);
        Assert.DoesNotContain("Console.WriteLine", html);
        Assert.DoesNotContain("lab-show-code", html[..html.IndexOf("<script>\n", StringComparison.Ordinal)]);
        Assert.DoesNotContain("class=\"prompt\"", html);
        Assert.Contains("writer at 1200 lines", html);
        Assert.Contains("id=\"lab-plot-1\"", html);
        // A code cell with nothing to show is left out; the others keep their status line.
        Assert.DoesNotContain("id=\"cell-c1\"", html);
        Assert.Contains("id=\"cell-c3\"", html);
        Assert.Contains("<h1 id=\"snapshot-while-writing\">Snapshot while writing</h1>", html);
    }

    [Fact]
    public void Given_no_prompt_When_reported_Then_the_code_stays_and_no_execution_prompt_is_shown()
    {
        var html = HtmlReport.Render(Executed(), new ReportOptions { NoPrompt = true });

        Assert.DoesNotContain("class=\"prompt\"", html);
        Assert.Contains("<pre class=\"input\"><code>Console.WriteLine(&quot;writer at 1200 lines&quot;);</code></pre>", html);
        Assert.Contains("id=\"lab-show-code\"", html);
        Assert.Equal(4, Regex.Matches(HtmlReport.Render(Executed()), "class=\"prompt\"").Count);
    }

    [Fact]
    public void Given_findings_shown_in_the_last_cell_When_reported_Then_the_findings_table_comes_first_before_the_run_metadata_plots_and_cells()
    {
        var html = HtmlReport.Render(Executed());

        var findings = html.IndexOf("id=\"lab-findings\"", StringComparison.Ordinal);
        Assert.True(findings > 0);
        Assert.True(findings < html.IndexOf("class=\"run-meta\"", StringComparison.Ordinal));
        Assert.True(findings < html.IndexOf("id=\"lab-plot-1\"", StringComparison.Ordinal));
        Assert.True(findings < html.IndexOf("id=\"cell-m1\"", StringComparison.Ordinal));
        var table = html[findings..html.IndexOf("</section>", findings, StringComparison.Ordinal)];
        Assert.Equal(
        [
            ("confirmed", "the writer runs to the end", "confirmed"),
            ("refuted-expected", "overlay1 holds a prefix", "refuted (expected)"),
            ("unexpected", "the image checks clean", "refuted"),
        ], FindingRow().Matches(table).Select(m => (m.Groups[1].Value, m.Groups[2].Value, m.Groups[3].Value)));
        // Still one file that needs no network.
        Assert.DoesNotContain("<script src", html);
        Assert.DoesNotMatch("src=\"https?:", html);
        Assert.Single(Regex.Matches(html, Regex.Escape(LabNotebooks.PlotlyJs.Text[..200])));
    }

    [Fact]
    public async Task Given_no_o_When_lab_report_runs_Then_it_writes_NAME_html_beside_the_notebook_with_the_options_applied()
    {
        using var scratch = TempDir("report-default");
        var notebook = Path.Combine(scratch.Path, "01-live.executed.ipynb");
        NotebookWriter.Save(Executed(), notebook);

        Assert.Equal(0, await Lab("report", notebook, "--no-input", "--no-prompt"));

        var report = Path.Combine(scratch.Path, "01-live.executed.html");
        Assert.True(File.Exists(report), string.Join(", ", Directory.GetFiles(scratch.Path)));
        var html = await File.ReadAllTextAsync(report);
        Assert.DoesNotContain("class=\"input\"", html);
        Assert.Contains("writer at 1200 lines", html);
        Assert.Equal(2, await Lab("report", notebook, "--no-such-option"));
    }

    [GeneratedRegex("<tr class=\"verdict-([a-z-]+)\"><td>([^<]*)</td><td>[^<]*</td><td class=\"verdict\">([^<]*)</td></tr>")]
    private static partial Regex FindingRow();
}
