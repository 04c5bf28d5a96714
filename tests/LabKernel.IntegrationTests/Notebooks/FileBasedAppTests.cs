using LabKernel.Processes;
using LabKernel.Tests.Conformance;
using LabKernel.Tests.Runner;

namespace LabKernel.IntegrationTests.Notebooks;

/// <summary>
/// Notebook 01 as its .NET 10 file-based app (<c>dotnet run scripts/01-live-snapshot-integrity.cs -- NAME=VALUE ...</c>)
/// on the embedded guest: it runs to the end, prints the findings with the notebook's verdicts and exits as `lab run`
/// does (0, or 4 for a claim refuted that the notebook did not declare expected). The notebook's run is the one its
/// own test and <see cref="ConformanceTests"/> share (<see cref="NotebookRun.SharedAsync"/>, same parameters).
/// Needs LabNotebooks packed (scripts/pack-labkernel; scripts/test does it): the app restores it from artifacts/packages.
/// </summary>
[Trait(Lanes.Name, Lanes.BesideUnit)]
public sealed class FileBasedAppTests
{
    private const string Notebook = "01-live-snapshot-integrity";

    private static string App => Path.Combine(RunnerTestSupport.RepoRoot, "scripts", Notebook + ".cs");

    private static async Task<ProcessResult> RunAppAsync(params string[] parameters) =>
        await ProcessRunner.RunAsync("dotnet", ["run", App, "--", .. parameters], new ProcessOptions
        {
            Check = false,
            // The build (restore, compile) and the run; the notebook's own runs are given 20 minutes too.
            Timeout = TimeSpan.FromMinutes(20),
            WorkingDirectory = RunnerTestSupport.RepoRoot,
            Environment = new Dictionary<string, string?> { ["DOTNET_NOLOGO"] = "1", ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1" },
        });

    [Fact]
    public async Task Given_notebook_01s_app_at_small_scale_with_fsfreeze_When_run_Then_it_exits_0_and_prints_the_notebooks_verdicts()
    {
        using var scratch = RunnerTestSupport.TempDir("app-01");
        var parameters = SmallScale.Notebook01.Chunk(2).Select(p => $"{p[0]}={p[1]}").ToArray();
        var notebookRun = NotebookRun.SharedAsync(Notebook, SmallScale.Notebook01);
        // The app keeps its files, so its artifacts.json carries its findings as well as its output.
        var report = Path.Combine(scratch.Path, "app.html");
        var appRun = RunAppAsync([.. parameters, "KeepArtifacts=true", $"OutputDir={scratch.Path}", $"--report={report}"]);
        var notebook = await notebookRun;
        var app = await appRun;

        Assert.True(notebook.ExitCode == 0, $"lab run exited {notebook.ExitCode}: {notebook.FirstError()}");
        Assert.True(app.ExitCode == 0, $"the app exited {app.ExitCode}:\n{app.StandardError}");
        var expected = RealKernelHosts.Verdicts(notebook.Executed);
        Assert.NotEmpty(expected);
        // Printed: a findings table row per finding, its claim first and its verdict last (Table.ToText).
        var lines = app.StandardOutput.Split('\n').Select(l => l.TrimEnd()).ToList();
        foreach (var (claim, verdict) in expected)
        {
            var printed = verdict == "hypothesis" ? "(hypothesis)" : verdict;
            Assert.True(lines.Any(l => l.StartsWith(claim, StringComparison.Ordinal) && l.EndsWith(printed, StringComparison.Ordinal)),
                $"no printed findings row '{claim}' ... '{printed}' in:\n{app.StandardOutput}");
        }
        var manifest = Assert.Single(Directory.GetFiles(scratch.Path, "artifacts.json", SearchOption.AllDirectories));
        Assert.Equal(expected.OrderBy(v => v.Claim), RealKernelHosts.ManifestVerdicts(manifest).OrderBy(v => v.Claim));
        Assert.EndsWith("(exit 0)", app.StandardError.TrimEnd(), StringComparison.Ordinal);
        // Its HTML report, as lab run writes one: the findings first.
        Assert.Contains($": report {report}\n", app.StandardError, StringComparison.Ordinal);
        Assert.Contains("id=\"lab-findings\"", await File.ReadAllTextAsync(report), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Given_notebook_01s_app_whose_writer_finishes_before_the_snapshot_When_run_Then_it_exits_4_naming_the_refuted_claim()
    {
        // 19,999 of 20,000 lines flushed when the snapshot is asked for: the writer has ended when it is taken, so the
        // claim that it wrote throughout the snapshot is refuted, which the notebook does not declare expected.
        var app = await RunAppAsync("Count=20000", "SnapshotAfterLines=19999", "Quiesce=sync", "--no-report");

        Assert.True(app.ExitCode == 4, $"the app exited {app.ExitCode}:\n{app.StandardOutput}\n{app.StandardError}");
        Assert.Contains("(exit 4)", app.StandardError, StringComparison.Ordinal);
        Assert.Contains("refuted, not declared expected: ", app.StandardError, StringComparison.Ordinal);
        Assert.Contains(app.StandardOutput.Split('\n'), l => l.TrimEnd().EndsWith("refuted", StringComparison.Ordinal));
    }
}
