namespace LabKernel.IntegrationTests.Notebooks;

/// <summary>Notebooks 04 (IO per chain depth, document 002), 05 (incremental backup, 003) and 06 (snapshot kinds, 004) through `lab run`, small scale.</summary>
[Trait(Lanes.Name, Lanes.BesideUnit)]
public sealed class Notebook04To06Tests
{
    [Fact]
    public async Task Given_notebook_04_at_small_scale_When_run_Then_fio_runs_at_every_depth_the_probe_reads_the_base_and_the_depth_hypothesis_is_tested()
    {
        using var run = await NotebookRun.RunAsync("04-snapshot-chain-io", "Snapshots", "2", "FilesPerSnapshot", "4", "FileMiB", "2", "FioSize", "32m", "FioSeconds", "2", "ProbeMiB", "16");

        Assert.True(run.ExitCode == 0, run.FirstError());
        await run.AssertValidNbformatAsync();
        Assert.NotEmpty(run.Findings);
        // The depth claim is a hypothesis: either verdict is a result; everything else is confirmed or a note.
        Assert.All(run.Findings, f => Assert.True(f.Verdict is "confirmed" or "info" or "confirmed (hypothesis)" or "refuted (hypothesis)", $"{f.Claim}: {f.Observed} ({f.Verdict})"));
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("After reverting to snapshot k the newest tag file", StringComparison.Ordinal) && f.Verdict == "confirmed");
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("The data disk runs on a chain of 3 layers", StringComparison.Ordinal) && f.Verdict == "confirmed");
        Assert.Contains(run.Findings, f => f.Claim == "Every probe run read all 16 MiB (fio's io_bytes)" && f.Verdict == "confirmed" && f.Observed.StartsWith("9 runs (3 per depth)", StringComparison.Ordinal));
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("At every depth qemu-img map puts all the probe's blocks in the base layer", StringComparison.Ordinal) && f.Verdict == "confirmed"
            && f.Observed.Contains("at depth 1 of 2 layers, 2 of 3 layers, 3 of 4 layers", StringComparison.Ordinal));
        var depth = Assert.Single(run.Findings, f => f.Claim.StartsWith("4k random O_DIRECT reads of base-layer data are slower through 4 layers than through 2", StringComparison.Ordinal));
        Assert.EndsWith("(hypothesis)", depth.Verdict, StringComparison.Ordinal);
        Assert.Contains(", 3 runs) at 4 layers", depth.Observed, StringComparison.Ordinal);
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("Share of fio's file still unwritten", StringComparison.Ordinal) && f.Verdict == "info");
        // Four jobs compared deepest against shallowest, as relative numbers.
        Assert.Equal(4, run.Findings.Count(f => f.Claim.Contains("IOPS, deepest chain vs shallowest", StringComparison.Ordinal) && f.Observed.Contains('x')));
        // The probe (median, min, max), IOPS and p99 against depth (four traces each), and the layers' sizes.
        var (charts, plotlyJs) = run.Charts();
        Assert.Equal(4, charts.Count);
        Assert.Equal(3, charts[0]["data"]!.AsArray().Count);
        Assert.Equal(4, charts[1]["data"]!.AsArray().Count);
        Assert.Equal(4, charts[2]["data"]!.AsArray().Count);
        Assert.Equal(1, plotlyJs);
    }

    /// <summary>
    /// The fault the probe check guards against: fio stopping before it read all the data (here its time limit, 1 s
    /// for 128 MiB of 4k reads, which TCG cannot do). The whole notebook must come out refuted and exit 4.
    /// </summary>
    [Fact]
    public async Task Given_notebook_04_whose_probe_is_stopped_early_When_run_Then_the_probe_check_is_refuted_and_lab_run_exits_4()
    {
        using var run = await NotebookRun.RunAsync("04-snapshot-chain-io", "Snapshots", "1", "FilesPerSnapshot", "1", "FileMiB", "1", "FioSize", "8m", "FioSeconds", "1",
            "ProbeMiB", "128", "ProbeSeconds", "1", "Repeats", "1");

        Assert.Equal(4, run.ExitCode);
        var probe = Assert.Single(run.Findings, f => f.Claim == "Every probe run read all 128 MiB (fio's io_bytes)");
        Assert.Equal("refuted", probe.Verdict);
        Assert.Contains("stopped at ProbeSeconds=1", probe.Observed, StringComparison.Ordinal);
        // One run per depth: the depth claim is a note, not a test.
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("4k random O_DIRECT reads of base-layer data", StringComparison.Ordinal) && f.Verdict == "info" && f.Observed.StartsWith("not tested", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Given_notebook_05_When_run_Then_pull_commit_and_every_backup_chain_restore_what_the_disk_held()
    {
        using var run = await NotebookRun.SharedAsync("05-incremental-backup", SmallScale.Notebook05);

        Assert.True(run.ExitCode == 0, run.FirstError());
        await run.AssertValidNbformatAsync();
        Assert.NotEmpty(run.Findings);
        Assert.All(run.Findings, f => Assert.True(f.Verdict is "confirmed" or "info", $"{f.Claim}: {f.Observed} ({f.Verdict})"));
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("qemu-img commit of the running top is refused", StringComparison.Ordinal));
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("Every backup chain", StringComparison.Ordinal) && f.Observed.StartsWith("3 of 3", StringComparison.Ordinal));
        // 003's conclusion 4, measured: overlay1's bytes unchanged after its snapshot, and a writer refused by QEMU's lock.
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("4. After an external snapshot the base image is locked", StringComparison.Ordinal) && f.Verdict == "confirmed"
            && f.Observed.Contains("SHA-256 unchanged", StringComparison.Ordinal) && f.Observed.Contains("Failed to get \"write\" lock", StringComparison.Ordinal));
        Assert.Equal(2, run.Findings.Count(f => f.Observed.StartsWith("not measured", StringComparison.Ordinal)));
        var (charts, _) = run.Charts();
        Assert.Equal(2, charts.Count);
    }

    /// <summary>
    /// The fault 05's increment check guards against, in the whole notebook: an increment that is not small against
    /// the full backup (200 MiB of new data against the roughly 350 MiB the full backup holds). Refuted, and
    /// `lab run` exits 4; the other checks still hold.
    /// </summary>
    [Fact]
    public async Task Given_notebook_05_whose_increment_is_a_third_of_the_full_backup_When_run_Then_the_increment_check_is_refuted_and_lab_run_exits_4()
    {
        using var run = await NotebookRun.RunAsync("05-incremental-backup", "Increments", "1", "IncrementMiB", "200");

        Assert.Equal(4, run.ExitCode);
        var increment = Assert.Single(run.Findings, f => f.Claim.StartsWith("Each increment holds the guest's new data", StringComparison.Ordinal));
        Assert.Equal("refuted", increment.Verdict);
        Assert.Contains("200 MiB written", increment.Observed, StringComparison.Ordinal);
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("Every backup chain", StringComparison.Ordinal) && f.Verdict == "confirmed" && f.Observed.StartsWith("2 of 2", StringComparison.Ordinal));
    }

    /// <summary>
    /// The fault 06's "writing throughout" guards against, in the whole notebook: a writer of 40 lines, finished long
    /// before the two snapshots end. Refuted, and `lab run` exits 4.
    /// </summary>
    [Fact]
    public async Task Given_notebook_06_whose_writer_finishes_before_the_snapshots_When_run_Then_writing_throughout_is_refuted_and_lab_run_exits_4()
    {
        using var run = await NotebookRun.RunAsync("06-snapshot-kinds", "WriterLines", "40");

        Assert.Equal(4, run.ExitCode);
        var overlap = Assert.Single(run.Findings, f => f.Claim.StartsWith("The guest was writing throughout the two snapshots", StringComparison.Ordinal));
        Assert.Equal("refuted", overlap.Verdict);
        Assert.EndsWith("40 when it ended, of 40", overlap.Observed, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Given_notebook_06_on_QEMU_When_run_Then_each_kind_is_measured_and_reverted_and_the_frozen_layer_needs_no_recovery()
    {
        using var run = await NotebookRun.SharedAsync("06-snapshot-kinds", SmallScale.Notebook06);

        Assert.True(run.ExitCode == 0, run.FirstError());
        await run.AssertValidNbformatAsync();
        Assert.NotEmpty(run.Findings);
        Assert.All(run.Findings, f => Assert.True(f.Verdict is "confirmed" or "info", $"{f.Claim}: {f.Observed} ({f.Verdict})"));
        // Four kinds on QEMU (the live memory snapshot is libvirt's), each reverted to its instant.
        Assert.Equal(4, run.Findings.Count(f => f.Claim.StartsWith("Reverting the ", StringComparison.Ordinal)));
        // The memory kinds come back with their memory (the saved state loaded, same boot), not by a cold boot.
        Assert.Contains(run.Findings, f => f.Claim == "Reverting the WithMemory snapshot returns the guest's memory and disk to the snapshot's instant" && f.Verdict == "confirmed" && f.Observed.Contains("(same boot)", StringComparison.Ordinal));
        Assert.Contains(run.Findings, f => f.Claim == "Reverting the Internal snapshot returns the guest's memory and disk to the snapshot's instant" && f.Verdict == "confirmed");
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("Reverting the DiskOnly snapshot returns the disk", StringComparison.Ordinal) && f.Observed.Contains("(a new boot)", StringComparison.Ordinal));
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("The crash-consistent snapshot's filesystem needed journal recovery", StringComparison.Ordinal) && f.Verdict == "info");
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("The frozen snapshot's filesystem needed no recovery", StringComparison.Ordinal) && f.Verdict == "confirmed");
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("The frozen snapshot holds every line the guest had written before the freeze", StringComparison.Ordinal) && f.Verdict == "confirmed");
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("The guest was writing throughout the two snapshots", StringComparison.Ordinal) && f.Verdict == "confirmed");
        var (charts, _) = run.Charts();
        Assert.Equal(2, charts.Count);
    }
}
