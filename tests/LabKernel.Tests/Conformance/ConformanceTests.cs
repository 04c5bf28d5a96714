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
    /// The notebooks compared: one line each (path from the repository root, parameters as -p pairs, whether it boots
    /// a guest). Guest notebooks run with LAB_CONFORMANCE_GUESTS=1, which scripts/test sets (they boot a guest per host, a minute or two each).
    /// </summary>
    private static readonly ConformanceCase[] Cases =
    [
        new("tests/LabKernel.Tests/Fixtures/Notebooks/conformance/findings.ipynb", [], BootsGuest: false),
        // Quiesced, so whether lines reach overlay1 does not depend on when ext4 writes back: the same verdicts every run.
        new("notebooks/01-live-snapshot-integrity.ipynb", ["Count", "300000", "SnapshotAfterLines", "20000", "Quiesce", "fsfreeze"], BootsGuest: true),
        new("notebooks/02-snapshot-and-commit-integrity.ipynb", ["Count", "300000", "SnapshotAfterLines", "20000", "Quiesce", "fsfreeze"], BootsGuest: true),
        new("notebooks/03-drive-mirror.ipynb", ["FileOps", "10", "WriteMiB", "8", "OutageSeconds", "3", "BootCopies", "false"], BootsGuest: true),
        // The IO numbers are notes (info): the checks (chain depth, tags per revert, fio did IO) decide the verdicts.
        new("notebooks/04-snapshot-chain-io.ipynb", ["Snapshots", "1", "FilesPerSnapshot", "2", "FileMiB", "1", "FioSize", "8m", "FioSeconds", "1", "ProbeMiB", "8", "Repeats", "1"], BootsGuest: true),
        new("notebooks/05-incremental-backup.ipynb", ["Increments", "1", "IncrementMiB", "2"], BootsGuest: true),
        new("notebooks/06-snapshot-kinds.ipynb", ["WriterLines", "400000"], BootsGuest: true),
    ];

    public static TheoryData<string> Notebooks()
    {
        var guests = Environment.GetEnvironmentVariable("LAB_CONFORMANCE_GUESTS") == "1";
        var data = new TheoryData<string>();
        foreach (var c in Cases.Where(c => guests || !c.BootsGuest))
        {
            data.Add(c.Path);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Notebooks))]
    public async Task Given_a_notebook_When_run_by_lab_run_dotnet_repl_and_VS_Codes_host_Then_the_findings_verdicts_agree(string notebook)
    {
        var @case = Cases.Single(c => c.Path == notebook);
        using var scratch = TempDir("conformance");
        // The hosts take no parameters: each runs a copy whose parameters cell already holds the values, as
        // `lab run -p` would inject them.
        var input = Path.Combine(scratch.Path, Path.GetFileName(notebook));
        var source = LabRunner.Notebooks.NotebookReader.Read(Path.Combine(RepoRoot, notebook));
        LabRunner.Notebooks.Parameters.Inject(source, [.. @case.Parameters.Chunk(2).Select(p => (p[0], p[1]))]);
        LabRunner.Notebooks.NotebookWriter.Save(source, input);
        var fromLab = Path.Combine(scratch.Path, "lab.ipynb");
        var fromRepl = Path.Combine(scratch.Path, "repl.ipynb");
        var fromJupyter = Path.Combine(scratch.Path, "jupyter.ipynb");

        // lab run replaces an injected-parameters cell with its own: give it the same values as -p.
        var labExit = await Lab(["run", input, "-o", fromLab, "--no-progress", "--allow-errors", .. @case.Parameters.Chunk(2).SelectMany(p => new[] { "-p", p[0], p[1] })]);
        await RealKernelHosts.DotnetReplAsync(input, fromRepl, HostTimeout);
        await RealKernelHosts.NbconvertAsync(input, fromJupyter, HostTimeout);

        // Each host ran the notebook to the end: no cell wrote an error.
        foreach (var executed in new[] { fromLab, fromRepl, fromJupyter })
        {
            Assert.True(RealKernelHosts.Errors(executed) is [], $"{Path.GetFileName(executed)}: {string.Join(" | ", RealKernelHosts.Errors(executed))}");
        }
        var expected = RealKernelHosts.Verdicts(fromLab);
        Assert.NotEmpty(expected);
        // Not only no error cell: no claim refuted that the notebook did not declare expected (lab run's exit 4).
        Assert.True(labExit == 0, $"lab run exited {labExit}; verdicts: {string.Join(" | ", expected.Where(v => v.Verdict == "refuted").Select(v => v.Claim))}");
        Assert.Equal(expected, RealKernelHosts.Verdicts(fromRepl));
        Assert.Equal(expected, RealKernelHosts.Verdicts(fromJupyter));

        // The notebook's .csx twin (scripts/), run as README.md says (`lab run scripts/NN.csx -- NAME=VALUE ...`),
        // reaches the same verdicts; it keeps its files, so its artifacts.json carries its findings.
        var twin = Path.Combine(RepoRoot, "scripts", Path.ChangeExtension(Path.GetFileName(notebook), ".csx"));
        if (File.Exists(twin))
        {
            var kept = Path.Combine(scratch.Path, "twin-run");
            var exit = await Lab(["run", twin, "-o", Path.Combine(scratch.Path, "twin.ipynb"), "--no-progress", "--",
                .. @case.Parameters.Chunk(2).Select(p => $"{p[0]}={p[1]}"), "KeepArtifacts=true", $"OutputDir={kept}"]);
            var manifest = Assert.Single(Directory.GetFiles(kept, "artifacts.json", SearchOption.AllDirectories));
            Assert.True(exit == 0, $"{Path.GetFileName(twin)} exited {exit}: {string.Join(" | ", RealKernelHosts.Errors(Path.Combine(scratch.Path, "twin.ipynb")))}");
            Assert.Equal(expected.OrderBy(v => v.Claim), RealKernelHosts.ManifestVerdicts(manifest).OrderBy(v => v.Claim));
        }
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

    private sealed record ConformanceCase(string Path, string[] Parameters, bool BootsGuest);
}

/// <summary>The real hosts are heavy (a kernel process each): one conformance test at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConformanceCollection
{
    public const string Name = "conformance";
}
