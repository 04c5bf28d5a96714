using LabKernel.Tests.Runner;
using static LabKernel.Tests.Runner.RunnerTestSupport;

namespace LabKernel.Tests.Conformance;

/// <summary>
/// `lab run` against the real hosts of the C# kernel: the same notebook, run by dotnet-repl, by VS Code's host
/// (dotnet-interactive as a Jupyter kernel under nbconvert) and by `lab run`, must reach the same findings verdicts.
/// Needs LabKernel packed and its source registered (scripts/pack-labkernel; scripts/test does it).
/// </summary>
[Collection(ConformanceCollection.Name)]
public sealed class ConformanceTests
{
    private static readonly TimeSpan HostTimeout = TimeSpan.FromMinutes(10);

    /// <summary>
    /// The notebooks compared here boot no guest; the experiment notebooks' conformance (which boot guests) is the
    /// integration test <c>LabKernel.IntegrationTests.Notebooks.ConformanceTests</c>, which shares its `lab run` with
    /// each notebook's own test.
    /// </summary>
    public static TheoryData<string> Notebooks() => ["tests/LabKernel.Tests/Fixtures/Notebooks/conformance/findings.ipynb"];

    [Theory]
    [MemberData(nameof(Notebooks))]
    public async Task Given_a_notebook_When_run_by_lab_run_dotnet_repl_and_VS_Codes_host_Then_the_findings_verdicts_agree(string notebook)
    {
        using var scratch = TempDir("conformance");
        var input = Path.Combine(scratch.Path, Path.GetFileName(notebook));
        File.Copy(Path.Combine(RepoRoot, notebook), input);
        var fromLab = Path.Combine(scratch.Path, "lab.ipynb");
        var fromRepl = Path.Combine(scratch.Path, "repl.ipynb");
        var fromJupyter = Path.Combine(scratch.Path, "jupyter.ipynb");

        var labExit = await Lab(["run", input, "-o", fromLab, "--no-progress", "--allow-errors"]);
        await RealKernelHosts.DotnetReplAsync(input, fromRepl, HostTimeout);
        await RealKernelHosts.NbconvertAsync(input, fromJupyter, HostTimeout);

        // Each host ran the notebook to the end and reached lab run's verdicts.
        RealKernelHosts.AssertSameVerdicts(fromLab, fromRepl, fromJupyter);
        Assert.True(labExit == 0, $"lab run exited {labExit}");
    }

    [Fact]
    public async Task Magic_commands_time_who_value_and_set_give_the_outputs_VS_Codes_host_gives()
    {
        using var scratch = TempDir("magics");
        var input = Path.Combine(scratch.Path, "magics.ipynb");
        File.Copy(Fixture(Path.Combine("conformance", "magics.ipynb")), input);
        var fromLab = Path.Combine(scratch.Path, "lab.ipynb");
        var fromJupyter = Path.Combine(scratch.Path, "jupyter.ipynb");

        Assert.Equal(0, await Lab("run", input, "-o", fromLab, "--no-progress"));
        await RealKernelHosts.NbconvertAsync(input, fromJupyter, HostTimeout);

        var lab = RealKernelHosts.NormalisedOutputs(fromLab);
        var jupyter = RealKernelHosts.NormalisedOutputs(fromJupyter);
        Assert.Equal(jupyter.Count, lab.Count);
        for (var i = 0; i < lab.Count; i++)
        {
            Assert.True(jupyter[i].SequenceEqual(lab[i]), $"cell {i + 1}:\n  VS Code's host: {string.Join("\n    ", jupyter[i])}\n  lab run:        {string.Join("\n    ", lab[i])}");
        }
        // The magics really ran: a wall time, the variable list, the shared value.
        Assert.Contains(lab[0], o => o.Contains("Wall time: Nms", StringComparison.Ordinal));
        Assert.Contains(lab[1], o => o.Contains("x", StringComparison.Ordinal));
        Assert.Contains(lab[3], o => o.Contains("hello from the value kernel", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Lab_report_of_a_notebook_run_by_dotnet_repl_shows_each_cells_real_status_and_time()
    {
        using var scratch = TempDir("repl-report");
        var input = Path.Combine(scratch.Path, "findings.ipynb");
        File.Copy(Fixture(Path.Combine("conformance", "findings.ipynb")), input);
        var executed = Path.Combine(scratch.Path, "repl.ipynb");
        var report = Path.Combine(scratch.Path, "report.html");
        await RealKernelHosts.DotnetReplAsync(input, executed, HostTimeout);

        Assert.Equal(0, await Lab("report", executed, "-o", report));

        var html = await File.ReadAllTextAsync(report);
        Assert.DoesNotContain("badge not-run", html);
        // dotnet-repl writes its markdown cells back as cells of the markdown kernel, so they count as run cells too.
        var ok = System.Text.RegularExpressions.Regex.Matches(html, "<span class=\"badge ok\">ok</span>").Count;
        Assert.True(ok >= 4, $"{ok} cells badged ok");
        Assert.Equal(ok, System.Text.RegularExpressions.Regex.Matches(html, "<span class=\"duration\">[0-9.]+ s</span>").Count);
    }

}

/// <summary>The real hosts are heavy (a kernel process each): one conformance test at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConformanceCollection
{
    public const string Name = "conformance";
}
