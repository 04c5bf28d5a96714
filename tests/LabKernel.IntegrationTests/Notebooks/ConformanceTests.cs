using LabKernel.Tests.Conformance;
using LabKernel.Tests.Runner;

namespace LabKernel.IntegrationTests.Notebooks;

/// <summary>
/// Each experiment notebook, run by `lab run`, by dotnet-repl, by VS Code's host (dotnet-interactive as a Jupyter kernel
/// under nbconvert), as its .csx twin and as its .NET 10 file-based app, runs to the end and reaches the same findings
/// verdicts. The `lab run` is the one the notebook's own test asserts on (<see cref="NotebookRun.SharedAsync"/>, same
/// parameters), so it is made once. The five runs share two slots, each with its own guest: a run keeps about one of
/// the two cores busy.
/// Needs LabKernel packed and its source registered (scripts/pack-labkernel; scripts/test does it).
/// </summary>
[Trait(Lanes.Name, Lanes.BesideUnit)]
public sealed class ConformanceTests
{
    private static readonly TimeSpan HostTimeout = TimeSpan.FromMinutes(10);

    /// <summary>Each notebook with the parameters every host gets (injected into the parameters cell for the hosts that take none).</summary>
    private static readonly Dictionary<string, string[]> Cases = new()
    {
        ["01-live-snapshot-integrity"] = SmallScale.Notebook01,
        ["02-snapshot-and-commit-integrity"] = SmallScale.Notebook02,
        ["03-drive-mirror"] = ["FileOps", "10", "WriteMiB", "8", "OutageSeconds", "3", "BootCopies", "false"],
        // The IO numbers are notes (info): the checks (chain depth, tags per revert, each fio job ran to its end) decide the verdicts.
        ["04-snapshot-chain-io"] = ["Snapshots", "1", "FilesPerSnapshot", "2", "FileMiB", "1", "FioSize", "8m", "FioSeconds", "1", "ProbeMiB", "8", "Repeats", "1"],
        ["05-incremental-backup"] = SmallScale.Notebook05,
        ["06-snapshot-kinds"] = SmallScale.Notebook06,
    };

    public static TheoryData<string> Notebooks() => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(Notebooks))]
    public async Task Given_a_notebook_When_run_by_lab_run_dotnet_repl_VS_Codes_host_as_its_csx_twin_and_as_its_app_Then_the_findings_verdicts_agree(string notebook)
    {
        var parameters = Cases[notebook];
        var assignments = parameters.Chunk(2).Select(p => $"{p[0]}={p[1]}").ToArray();
        using var scratch = RunnerTestSupport.TempDir("conformance");
        // dotnet-repl and the Jupyter host take no parameters: each runs a copy whose parameters cell holds the values,
        // as `lab run -p` injects them.
        var input = Path.Combine(scratch.Path, notebook + ".ipynb");
        var source = LabRunner.Notebooks.NotebookReader.Read(Path.Combine(RunnerTestSupport.RepoRoot, "notebooks", notebook + ".ipynb"));
        LabRunner.Notebooks.Parameters.Inject(source, [.. parameters.Chunk(2).Select(p => (p[0], p[1]))]);
        LabRunner.Notebooks.NotebookWriter.Save(source, input);
        var fromRepl = Path.Combine(scratch.Path, "repl.ipynb");
        var fromJupyter = Path.Combine(scratch.Path, "jupyter.ipynb");
        var twin = Path.Combine(RunnerTestSupport.RepoRoot, "scripts", notebook + ".csx");
        var twinRun = Path.Combine(scratch.Path, "twin-run");
        var twinExecuted = Path.Combine(scratch.Path, "twin.ipynb");
        var appRun = Path.Combine(scratch.Path, "app-run");
        var appReport = Path.Combine(scratch.Path, "app.html");

        // Two runs at a time, started in this order as slots free up.
        using var slots = new SemaphoreSlim(2);
        async Task<T> InSlot<T>(Func<Task<T>> run)
        {
            await slots.WaitAsync();
            try
            {
                return await run();
            }
            finally
            {
                slots.Release();
            }
        }
        var labRun = InSlot(() => NotebookRun.SharedAsync(notebook, parameters));
        var replRun = InSlot(async () => { await RealKernelHosts.DotnetReplAsync(input, fromRepl, HostTimeout); return 0; });
        // The twin and the app keep their files, so their artifacts.json carries their findings.
        var twinExit = InSlot(() => RunnerTestSupport.Lab(["run", twin, "-o", twinExecuted, "--no-progress", "--",
            .. assignments, "KeepArtifacts=true", $"OutputDir={twinRun}"]));
        var jupyterRun = InSlot(async () => { await RealKernelHosts.NbconvertAsync(input, fromJupyter, HostTimeout); return 0; });
        var app = InSlot(() => FileBasedApps.RunAsync(notebook, [.. assignments, "KeepArtifacts=true", $"OutputDir={appRun}", $"--report={appReport}"]));
        await Task.WhenAll(labRun, replRun, twinExit, jupyterRun, app);

        // Each host ran the notebook to the end and reached lab run's verdicts; the twin's executed notebook has no
        // error cell either (its verdicts are read from its artifacts.json below).
        var lab = await labRun;
        var expected = RealKernelHosts.AssertSameVerdicts(lab.Executed, fromRepl, fromJupyter);
        Assert.True(RealKernelHosts.Errors(twinExecuted) is [], $"{Path.GetFileName(twinExecuted)}: {string.Join(" | ", RealKernelHosts.Errors(twinExecuted))}");
        // Not only no error cell: no claim refuted that the notebook did not declare expected (lab run's exit 4).
        Assert.True(lab.ExitCode == 0, $"lab run exited {lab.ExitCode}: {lab.FirstError()}");
        Assert.True(await twinExit == 0, $"{Path.GetFileName(twin)} exited {await twinExit}");
        var manifest = Assert.Single(Directory.GetFiles(twinRun, "artifacts.json", SearchOption.AllDirectories));
        Assert.Equal(expected.OrderBy(v => v.Claim), RealKernelHosts.ManifestVerdicts(manifest).OrderBy(v => v.Claim));
        await FileBasedApps.AssertVerdictsAsync(await app, appRun, appReport, expected);
    }
}
