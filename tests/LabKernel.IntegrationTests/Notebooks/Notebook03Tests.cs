using System.Text.Json.Nodes;

namespace LabKernel.IntegrationTests.Notebooks;

/// <summary>Notebook 03 (drive_mirror, document 001) end to end through `lab run` at a small scale.</summary>
public sealed class Notebook03Tests
{
    /// <summary>
    /// The fault 03's first check guards against, in the whole notebook: a mirror that is READY before the file
    /// workload ends (no speed limit, 120 file operations), so the workload did not run under a copying job. Refuted,
    /// and `lab run` exits 4. Copies are read offline (`BootCopies false`) to keep the run short.
    /// </summary>
    [Fact]
    public async Task Given_notebook_03_whose_mirror_is_ready_before_the_workload_ends_When_run_Then_the_overlap_check_is_refuted_and_lab_run_exits_4()
    {
        using var run = await NotebookRun.RunAsync("03-drive-mirror", "FileOps", "120", "MirrorSpeedMiB", "100000", "WriteMiB", "8", "OutageSeconds", "3", "BootCopies", "false");

        Assert.Equal(4, run.ExitCode);
        var overlap = Assert.Single(run.Findings, f => f.Claim == "1. The file workload ran while the mirror was still copying (not READY yet)");
        Assert.Equal("refuted", overlap.Verdict);
        Assert.EndsWith("job Ready", overlap.Observed, StringComparison.Ordinal);
        // The copy still holds every operation: only the overlap failed.
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("1. Every created, deleted and written file", StringComparison.Ordinal) && f.Verdict == "confirmed");
    }

    /// <remarks>In lane C (the refuted run stays in lane B): the two runs are each about a tenth of a lane.</remarks>
    [Fact]
    [Trait(Lanes.Name, Lanes.FromTheStart)]
    public async Task Given_notebook_03_at_small_scale_When_run_Then_all_seven_parts_run_and_every_claim_is_confirmed()
    {
        // The copy limited to 16 MiB/s while the guest works (25 s for the 403 MiB disk): on a saturated host 20 file
        // operations outlasted the default 64 MiB/s (6 s) once, and part 1's overlap claim was refuted, rightly.
        using var run = await NotebookRun.RunAsync("03-drive-mirror", "FileOps", "20", "WriteMiB", "16", "OutageSeconds", "4", "MirrorSpeedMiB", "16");

        Assert.True(run.ExitCode == 0, run.FirstError());
        await run.AssertValidNbformatAsync();
        Assert.NotEmpty(run.Findings);
        Assert.All(run.Findings, f => Assert.True(f.Verdict is "confirmed" or "info", $"{f.Claim}: {f.Observed} ({f.Verdict})"));
        // Every part of the document reported something.
        foreach (var part in Enumerable.Range(1, 7))
        {
            Assert.Contains(run.Findings, f => f.Claim.StartsWith($"{part}. ", StringComparison.Ordinal));
        }
        Assert.Contains(run.Findings, f => f.Claim.Contains("offset flat", StringComparison.Ordinal) && f.Verdict == "confirmed");
        // Experiment 6 moves the original to a second filesystem (a tmpfs the lab mounts) and reads QEMU's open files again.
        Assert.Contains(run.Findings, f => f.Claim == "6. The original moved to another filesystem" && f.Verdict == "confirmed" && f.Observed.Contains(" to tmpfs ", StringComparison.Ordinal));
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("6. After the move QEMU holds none of the moved images and no deleted file", StringComparison.Ordinal) && f.Verdict == "confirmed"
            && f.Observed.Contains("mirror-b.qcow2 among them", StringComparison.Ordinal));
        // Two Plotly.NET charts: the outage shaded on the mirror's offset, and shallow vs full as grouped columns.
        var (charts, plotlyJs) = run.Charts();
        Assert.Equal(2, charts.Count);
        Assert.Equal(["NBD server down"], NotebookRun.ShadedLabels(charts[0]));
        Assert.Equal(2, charts[1]["data"]!.AsArray().Count);
        Assert.Equal(1, plotlyJs);

        // With KeepArtifacts the chain and the copies stay, each named by its role.
        var manifest = Directory.GetFiles(run.Folder, "artifacts.json", SearchOption.AllDirectories).Single();
        var roles = JsonNode.Parse(File.ReadAllText(manifest))!["artifacts"]!.AsArray().Select(a => a!["role"]!.GetValue<string>()).ToHashSet();
        foreach (var role in new[] { "base", "vm-base", "disk", "mirror1", "mirror2-nbd", "mirror-a", "mirror-b", "vm-top", "mirror-shallow", "mirror-full" })
        {
            Assert.Contains(role, roles);
        }
        // The kept moved images came back from the tmpfs, which is unmounted.
        var artifacts = JsonNode.Parse(File.ReadAllText(manifest))!["artifacts"]!.AsArray();
        var movedBase = artifacts.Single(a => a!["role"]!.GetValue<string>() == "vm-base-moved")!["path"]!.GetValue<string>();
        Assert.EndsWith("other-fs.kept/vm-base.qcow2", movedBase, StringComparison.Ordinal);
        Assert.True(File.Exists(movedBase));
        Assert.DoesNotContain(File.ReadAllLines("/proc/mounts"), l => l.Contains(Path.GetDirectoryName(manifest)!, StringComparison.Ordinal));
    }
}
