using LabKernel.Processes;
using LabKernel.Tests.Conformance;
using LabKernel.Tests.Runner;

namespace LabKernel.IntegrationTests.Notebooks;

/// <summary>
/// Running the experiments' .NET 10 file-based apps (<c>dotnet run scripts/NN-name.cs -- NAME=VALUE ...</c>) and reading
/// what they end with. <see cref="ConformanceTests"/> runs all six beside their notebooks; <see cref="FileBasedAppTests"/>
/// checks an app's own exit code for a refuted claim.
/// </summary>
internal static class FileBasedApps
{
    public static string App(string notebook) => Path.Combine(RunnerTestSupport.RepoRoot, "scripts", notebook + ".cs");

    public static async Task<ProcessResult> RunAsync(string notebook, params string[] parameters) =>
        await ProcessRunner.RunAsync("dotnet", ["run", App(notebook), "--", .. parameters], new ProcessOptions
        {
            Check = false,
            // The build (restore, compile) and the run; the notebook's own runs are given 20 minutes too.
            Timeout = TimeSpan.FromMinutes(20),
            WorkingDirectory = RunnerTestSupport.RepoRoot,
            Environment = RealKernelHosts.KernelEnvironment(new() { ["DOTNET_NOLOGO"] = "1", ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1" }),
        });

    /// <summary>
    /// The app exited 0 and reached <paramref name="expected"/>: a printed findings row per finding (its claim first and
    /// its verdict last, as <c>Table.ToText</c> prints it), the same verdicts in the artifacts.json it kept under
    /// <paramref name="outputDir"/>, the exit line, and its HTML report at <paramref name="report"/> (asked for with
    /// <c>--report=PATH</c>) with the findings section, naming each claim.
    /// </summary>
    public static async Task AssertVerdictsAsync(ProcessResult app, string outputDir, string report, List<(string Claim, string Verdict)> expected)
    {
        Assert.True(app.ExitCode == 0, $"the app exited {app.ExitCode}:\n{app.StandardError}");
        var lines = app.StandardOutput.Split('\n').Select(l => l.TrimEnd()).ToList();
        foreach (var (claim, verdict) in expected)
        {
            var printed = verdict == "hypothesis" ? "(hypothesis)" : verdict;
            Assert.True(lines.Any(l => l.StartsWith(claim, StringComparison.Ordinal) && l.EndsWith(printed, StringComparison.Ordinal)),
                $"no printed findings row '{claim}' ... '{printed}' in:\n{app.StandardOutput}");
        }
        var manifest = Assert.Single(Directory.GetFiles(outputDir, "artifacts.json", SearchOption.AllDirectories));
        Assert.Equal(expected.OrderBy(v => v.Claim), RealKernelHosts.ManifestVerdicts(manifest).OrderBy(v => v.Claim));
        Assert.EndsWith("(exit 0)", app.StandardError.TrimEnd(), StringComparison.Ordinal);
        Assert.Contains($": report {report}\n", app.StandardError, StringComparison.Ordinal);
        var html = await File.ReadAllTextAsync(report);
        Assert.Contains("id=\"lab-findings\"", html, StringComparison.Ordinal);
        foreach (var (claim, _) in expected)
        {
            Assert.Contains(System.Net.WebUtility.HtmlEncode(claim), html, StringComparison.Ordinal);
        }
    }
}

/// <summary>
/// Notebook 01's file-based app exits as `lab run` does when a claim is refuted that the notebook did not declare
/// expected: 4, naming the claim. (Its exit 0 with the notebook's verdicts, and the other five apps', are in
/// <see cref="ConformanceTests"/>.)
/// Needs LabNotebooks packed (scripts/pack-labkernel; scripts/test does it): the app restores it from artifacts/packages.
/// </summary>
[Trait(Lanes.Name, Lanes.BesideUnit)]
public sealed class FileBasedAppTests
{
    [Fact]
    public async Task Given_notebook_01s_app_whose_writer_finishes_before_the_snapshot_When_run_Then_it_exits_4_naming_the_refuted_claim()
    {
        // 19,999 of 20,000 lines flushed when the snapshot is asked for: the writer has ended when it is taken, so the
        // claim that it wrote throughout the snapshot is refuted, which the notebook does not declare expected.
        var app = await FileBasedApps.RunAsync("01-live-snapshot-integrity", "Count=20000", "SnapshotAfterLines=19999", "Quiesce=sync", "--no-report");

        Assert.True(app.ExitCode == 4, $"the app exited {app.ExitCode}:\n{app.StandardOutput}\n{app.StandardError}");
        Assert.Contains("(exit 4)", app.StandardError, StringComparison.Ordinal);
        Assert.Contains("refuted, not declared expected: ", app.StandardError, StringComparison.Ordinal);
        Assert.Contains(app.StandardOutput.Split('\n'), l => l.TrimEnd().EndsWith("refuted", StringComparison.Ordinal));
    }
}
