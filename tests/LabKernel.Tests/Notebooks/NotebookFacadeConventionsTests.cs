using System.Text.RegularExpressions;

namespace LabKernel.Tests.Notebooks;

/// <summary>
/// The experiment notebooks are written on the facade (issue "one seam"): one package reference, at most two
/// usings, the parameters every notebook takes, no HTML made by hand, no backend type tests, no raw QMP JSON, and
/// the run ended by the facade.
/// </summary>
public sealed partial class NotebookFacadeConventionsTests
{
    public static TheoryData<string> Sources()
    {
        var data = new TheoryData<string>();
        foreach (var dib in Directory.GetFiles(Path.Combine(LabKernel.Tests.Runner.RunnerTestSupport.RepoRoot, "notebooks", "src"), "*.dib").Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(dib));
        }
        return data;
    }

    [GeneratedRegex(@"^#!(\w+)\s*$", RegexOptions.Multiline)]
    private static partial Regex CellMarker();

    private static List<string> CodeCells(string name)
    {
        var text = File.ReadAllText(Path.Combine(LabKernel.Tests.Runner.RunnerTestSupport.RepoRoot, "notebooks", "src", name));
        var parts = CellMarker().Split(text);
        var cells = new List<string>();
        for (var i = 1; i + 1 < parts.Length; i += 2)
        {
            if (parts[i] == "csharp")
            {
                cells.Add(parts[i + 1].Trim());
            }
        }
        return cells;
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void Given_a_notebook_source_Then_it_starts_with_one_reference_and_takes_the_common_parameters(string name)
    {
        var cells = CodeCells(name);
        Assert.Equal("#r \"nuget: LabNotebooks, 0.1.0\"", cells[0]);
        var code = string.Join("\n", cells);
        Assert.True(code.Split('\n').Count(l => l.TrimStart().StartsWith("using ", StringComparison.Ordinal) && l.TrimEnd().EndsWith(';')) <= 2, "at most two using lines");
        var parameters = cells.Single(c => c.StartsWith("// parameters", StringComparison.Ordinal));
        foreach (var p in new[] { "Backend", "Domain", "DomainDisk", "LibvirtUri", "KeepArtifacts", "OutputDir" })
        {
            Assert.Matches($@"\b{p}\s*=", parameters);
        }
        Assert.Contains("await Lab.StartAsync(", code, StringComparison.Ordinal);
        Assert.Equal("await lab.FinishAsync()", cells[^1]);
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void Given_a_notebook_source_Then_it_has_no_hand_made_HTML_no_backend_type_tests_and_no_raw_QMP_JSON(string name)
    {
        var code = string.Join("\n", CodeCells(name));
        Assert.DoesNotContain("HtmlEncode", code, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"\bis\s+(QemuLabGuest|LibvirtLabGuest)\b", code);
        Assert.DoesNotMatch(@"\bas\s+(QemuLabGuest|LibvirtLabGuest)\b", code);
        Assert.DoesNotContain("new JsonObject", code, StringComparison.Ordinal);
        Assert.DoesNotContain("Task.Delay(", code, StringComparison.Ordinal);
    }
}
