namespace LabKernel.IntegrationTests.Notebooks;

/// <summary>Notebooks 04 (IO per chain depth, document 002), 05 (incremental backup, 003) and 06 (snapshot kinds, 004) through `lab run`, small scale.</summary>
public sealed class Notebook04To06Tests
{
    [Fact]
    public async Task Given_notebook_04_at_small_scale_When_run_Then_fio_runs_at_every_depth_and_each_revert_lands_on_its_snapshot()
    {
        using var run = await NotebookRun.RunAsync("04-snapshot-chain-io", "Snapshots", "2", "FilesPerSnapshot", "4", "FileMiB", "2", "FioSize", "32m", "FioSeconds", "2");

        Assert.True(run.ExitCode == 0, run.FirstError());
        await run.AssertValidNbformatAsync();
        Assert.NotEmpty(run.Findings);
        Assert.All(run.Findings, f => Assert.True(f.Verdict is "confirmed" or "info", $"{f.Claim}: {f.Observed} ({f.Verdict})"));
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("After reverting to snapshot k the newest tag file", StringComparison.Ordinal) && f.Verdict == "confirmed");
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("The data disk runs on a chain of 3 layers", StringComparison.Ordinal) && f.Verdict == "confirmed");
        // Four jobs compared deepest against shallowest, as relative numbers.
        Assert.Equal(4, run.Findings.Count(f => f.Claim.Contains("IOPS, deepest chain vs shallowest", StringComparison.Ordinal) && f.Observed.Contains('x')));
        // IOPS and p99 against depth (four traces each), and the layers' sizes.
        var (charts, plotlyJs) = run.Charts();
        Assert.Equal(3, charts.Count);
        Assert.Equal(4, charts[0]["data"]!.AsArray().Count);
        Assert.Equal(4, charts[1]["data"]!.AsArray().Count);
        Assert.Equal(1, plotlyJs);
    }

    [Fact]
    public async Task Given_notebook_05_When_run_Then_pull_commit_and_every_backup_chain_restore_what_the_disk_held()
    {
        using var run = await NotebookRun.RunAsync("05-incremental-backup", "Increments", "2", "IncrementMiB", "4");

        Assert.True(run.ExitCode == 0, run.FirstError());
        await run.AssertValidNbformatAsync();
        Assert.NotEmpty(run.Findings);
        Assert.All(run.Findings, f => Assert.True(f.Verdict is "confirmed" or "info", $"{f.Claim}: {f.Observed} ({f.Verdict})"));
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("qemu-img commit of the running top is refused", StringComparison.Ordinal));
        Assert.Contains(run.Findings, f => f.Claim.StartsWith("Every backup chain", StringComparison.Ordinal) && f.Observed.StartsWith("3 of 3", StringComparison.Ordinal));
        var (charts, _) = run.Charts();
        Assert.Equal(2, charts.Count);
    }

    [Fact]
    public async Task Given_notebook_06_on_QEMU_When_run_Then_each_kind_is_measured_and_reverted_and_the_frozen_layer_needs_no_recovery()
    {
        using var run = await NotebookRun.RunAsync("06-snapshot-kinds", "WriterLines", "400000");

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

    [Fact]
    public async Task Given_notebook_06_on_libvirt_When_run_Then_libvirts_refusal_to_revert_an_external_snapshot_is_recorded_as_the_document_says()
    {
        using var run = await NotebookRun.RunAsync("06-snapshot-kinds", "WriterLines", "400000", "Backend", "libvirt");

        Assert.True(run.ExitCode == 0, run.FirstError());
        Assert.NotEmpty(run.Findings);
        Assert.All(run.Findings, f => Assert.True(f.Verdict is "confirmed" or "info" || f.Verdict == "refuted" && f.Claim.StartsWith("Reverting the WithMemory", StringComparison.Ordinal),
            $"{f.Claim}: {f.Observed} ({f.Verdict})"));
        // libvirt's own refusal, as the LibvirtException of virDomainRevertToSnapshot carries it.
        var refused = run.Findings.Single(f => f.Claim == "libvirt cannot revert to an external snapshot (4)");
        Assert.Equal("confirmed", refused.Verdict);
        Assert.StartsWith("libvirt virDomainRevertToSnapshot on domain '", refused.Observed, StringComparison.Ordinal);
        Assert.Contains("not supported yet", refused.Observed, StringComparison.Ordinal);
        Assert.Equal(5, run.Findings.Count(f => f.Claim.StartsWith("Reverting the ", StringComparison.Ordinal)));
    }
}
