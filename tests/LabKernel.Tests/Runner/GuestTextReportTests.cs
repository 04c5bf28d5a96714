using System.Text.Json.Nodes;
using LabRunner.Notebooks;
using LabRunner.Reporting;

namespace LabKernel.Tests.Runner;

/// <summary>
/// A report shows what the guest printed: a cell's stdout (a <c>df</c>), an error whose message quotes a guest
/// command's stderr, plain-text and JSON results, a refuted claim naming guest output, a <c>-p</c> value. Markup in
/// any of them comes out encoded; only a display's own text/html (made by the lab's formatters, which encode) is HTML.
/// </summary>
public sealed class GuestTextReportTests
{
    private const string GuestText = "/dev/vda 990 420 /mnt/<script>alert('x')</script> & <img src=x onerror=alert(1)>";

    [Fact]
    public void Given_guest_text_in_stdout_errors_plain_and_json_results_findings_and_parameters_When_reported_Then_none_of_it_is_markup()
    {
        var cell = new NotebookCell(CellKind.Code, "await lab.ShAsync(\"df -m /\")", Languages.CSharp, id: "c1");
        cell.Outputs.Add(new JsonObject { ["output_type"] = "stream", ["name"] = "stdout", ["text"] = GuestText + "\n" });
        cell.Outputs.Add(new JsonObject { ["output_type"] = "stream", ["name"] = "stderr", ["text"] = new JsonArray(GuestText, "\n") });
        cell.Outputs.Add(new JsonObject
        {
            ["output_type"] = "error", ["ename"] = "GuestCommandFailedException", ["evalue"] = $"guest command `df` exited with 1: {GuestText}",
            ["traceback"] = new JsonArray(GuestText),
        });
        cell.Outputs.Add(new JsonObject { ["output_type"] = "execute_result", ["execution_count"] = 1, ["metadata"] = new JsonObject(), ["data"] = new JsonObject { ["text/plain"] = GuestText } });
        cell.Outputs.Add(new JsonObject { ["output_type"] = "display_data", ["metadata"] = new JsonObject(), ["data"] = new JsonObject { ["application/json"] = new JsonObject { ["df"] = GuestText } } });
        cell.Outputs.Add(new JsonObject
        {
            ["output_type"] = "display_data", ["metadata"] = new JsonObject(),
            ["data"] = new JsonObject
            {
                ["text/markdown"] = GuestText,
            },
        });
        cell.Outputs.Add(new JsonObject
        {
            ["output_type"] = "display_data", ["metadata"] = new JsonObject(),
            ["data"] = new JsonObject
            {
                [FindingsSummary.MimeType] = new JsonObject { ["findings"] = new JsonArray(new JsonObject { ["claim"] = GuestText, ["verdict"] = "refuted", ["observed"] = GuestText }) },
                ["text/plain"] = GuestText,
            },
        });
        var nb = new Notebook("df <b>.ipynb", NotebookFormat.Ipynb, [], [cell]);
        nb.LabMetadata["status"] = "refuted";
        nb.LabMetadata["parameters"] = new JsonObject { ["Mount"] = GuestText };

        var html = HtmlReport.Render(nb);

        Assert.DoesNotContain("<script>alert", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<img", html, StringComparison.OrdinalIgnoreCase);
        // stdout, stderr, error message, traceback, text/plain, the refuted claim in the header and the parameter: each encoded.
        Assert.True(Occurrences(html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") >= 6, html);
    }

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
