using System.Text.Json.Nodes;
using LabKernel.Tests.Runner;

namespace LabKernel.IntegrationTests.Notebooks;

/// <summary>
/// `lab sweep` of a real experiment notebook on the embedded guest: notebook 01 over two quiesce modes, two runs at
/// once (`-j 2`), each with its own kernel and guest. One combination is exactly the shared small-scale run of 01
/// (<see cref="SmallScale.Notebook01"/>), so the sweep's verdicts are compared with a single `lab run`'s without a
/// run of its own.
/// </summary>
[Trait(Lanes.Name, Lanes.BesideUnit)]
public sealed class SweepNotebookTests
{
    [Fact]
    public async Task Given_notebook_01_swept_over_two_quiesce_modes_When_run_two_at_a_time_and_again_Then_each_run_is_recorded_with_a_single_runs_verdicts_and_the_second_sweep_runs_nothing()
    {
        using var scratch = RunnerTestSupport.TempDir("sweep-01");
        var matrix = Path.Combine(scratch.Path, "matrix.yaml");
        await File.WriteAllTextAsync(matrix, "Count: [400000]\nSnapshotAfterLines: [40000]\nQuiesce: [fsfreeze, sync]\n");
        var dir = Path.Combine(scratch.Path, "sweep");
        var notebook = Path.Combine(NotebookRun.RepoRoot, "notebooks", "01-live-snapshot-integrity.ipynb");

        var exit = await RunnerTestSupport.Lab("sweep", notebook, "--matrix", matrix, "-o", dir, "-j", "2");

        var sweep = RunnerTestSupport.ReadJson(Path.Combine(dir, "sweep.json"));
        var runs = sweep["runs"]!.AsArray().Select(r => r!.AsObject()).ToList();
        Assert.True(exit == 0, $"lab sweep exited {exit}: {string.Join(" | ", runs.Select(r => $"{r["id"]}: {r["status"]} {r["error"]}"))}");
        Assert.Equal(["fsfreeze", "sync"], runs.Select(r => r["parameters"]!["Quiesce"]!.GetValue<string>()));
        var results = runs.Select(r => RunnerTestSupport.ReadJson(Path.Combine(dir, r["folder"]!.GetValue<string>(), "result.json"))).ToList();
        foreach (var result in results)
        {
            Assert.Equal("ok", result["status"]!.GetValue<string>());
            Assert.Equal("embedded", result["host"]!.GetValue<string>());
            // What ran it: the QEMU the guest ran on and how it was accelerated, from the run's own record.
            Assert.StartsWith("QEMU emulator version ", result["versions"]!["qemu"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.StartsWith("tcg (", result["accelerator"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.NotEmpty(result["findings"]!.AsArray());
            // The numbers the run measured, beside its verdicts: overlay2 (the new top) held all 400,000 lines, and
            // the snapshot took some time.
            var measured = result["measurements"]!.AsObject();
            Assert.Equal(400000, measured["lines_in_new_top"]!.GetValue<double>());
            Assert.True(measured["snapshot_duration"]!.GetValue<double>() > 0, measured.ToJsonString());
        }
        // The records as JSON lines, one per run, and a chart per measurement in the merged report.
        Assert.Equal(2, File.ReadAllLines(Path.Combine(dir, "results.jsonl")).Count(l => l.Length > 0));
        var html = await File.ReadAllTextAsync(Path.Combine(dir, "sweep.html"));
        Assert.True(html.Split("<svg class=\"chart\"").Length - 1 >= 6, "fewer than 6 charts in sweep.html");
        // The combination that is the shared single run reached that run's verdicts, claim by claim.
        var single = await NotebookRun.SharedAsync("01-live-snapshot-integrity", SmallScale.Notebook01);
        Assert.True(single.ExitCode == 0, single.FirstError());
        Assert.Equal(single.Findings.Select(f => (f.Claim, f.Verdict)).OrderBy(f => f.Claim),
            Verdicts(results[0]).OrderBy(f => f.Claim));
        // With sync instead of fsfreeze no claim is refuted unexpectedly either (the sweep's exit 0 says so; so does
        // each finding's own record).
        Assert.All(results[1]["findings"]!.AsArray(), f => Assert.False(f!["unexpected"]!.GetValue<bool>(), $"{f["claim"]}: {f["observed"]}"));

        // Again: both combinations are finished, so nothing runs (each record keeps its start time).
        var started = results.Select(r => r["started"]!.GetValue<string>()).ToList();
        Assert.Equal(0, await RunnerTestSupport.Lab("sweep", notebook, "--matrix", matrix, "-o", dir, "-j", "2"));
        Assert.Equal(started, runs.Select(r => RunnerTestSupport.ReadJson(Path.Combine(dir, r["folder"]!.GetValue<string>(), "result.json"))["started"]!.GetValue<string>()));
        Assert.True(File.Exists(Path.Combine(dir, "sweep.html")));
    }

    /// <summary>
    /// (claim, verdict) as <see cref="NotebookRun.Findings"/> gives them ("confirmed", "refuted", "info", with
    /// " (hypothesis)" for a hypothesis): a sweep records the verdict as a table shows it, "refuted (expected)" too.
    /// </summary>
    private static IEnumerable<(string Claim, string Verdict)> Verdicts(JsonObject result) =>
        result["findings"]!.AsArray().Select(f => (f!["claim"]!.GetValue<string>(), f["verdict"]!.GetValue<string>().Replace(" (expected)", "", StringComparison.Ordinal)));
}
