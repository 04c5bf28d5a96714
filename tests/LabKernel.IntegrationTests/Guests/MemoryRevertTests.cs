using LabKernel.Backends;
using LabKernel.GuestAgent;
using LabKernel.Host;
using LabKernel.Images;
using LabKernel.Integrity;
using Xunit.Abstractions;

namespace LabKernel.IntegrationTests.Guests;

/// <summary>
/// Notebook 06's verdicts on QEMU, made to fail: a snapshot with memory reverted for real (its saved state loaded into
/// a new QEMU) brings back the memory marker and the boot id; the same snapshot "reverted" by a cold boot on its disk
/// layer, or not reverted at all, is refuted; a writer killed mid-run does not "run to the end"; an operation after
/// the writer finished did not run "under" it.
/// </summary>
[Trait(Lanes.Name, Lanes.BesideUnit)]
public sealed class MemoryRevertTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("lab-memrevert-").FullName;
    private ILabGuest _guest = null!;

    public async Task InitializeAsync()
    {
        LabFiles.MarkFolder(_folder);
        _guest = await LabGuests.StartAsync(new LabGuestOptions { WorkFolder = _folder, Overlays = [Path.Combine(_folder, "overlay1.qcow2")], Name = "memrevert" });
    }

    public async Task DisposeAsync()
    {
        await _guest.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    private string NewFile(string role, string name) => Path.Combine(_folder, name);

    [Fact]
    public async Task Given_a_snapshot_with_memory_When_reverted_by_loading_its_state_it_is_confirmed_and_when_cold_booted_or_not_reverted_it_is_refuted()
    {
        await InstantMarkers.WriteAsync(_guest.Agent, "at-the-snapshot");
        var atSnapshot = await InstantMarkers.ReadAsync(_guest.Agent);
        var snapshot = await GuestSnapshots.TakeAsync(_guest, _guest.Disk, SnapshotKind.WithMemory, "mem1", NewFile);
        await InstantMarkers.WriteAsync(_guest.Agent, "after-the-snapshot");

        // Not reverted at all: the markers say "after".
        var notReverted = new RevertEvidence(SnapshotKind.WithMemory, atSnapshot, await InstantMarkers.ReadAsync(_guest.Agent));
        Assert.False(notReverted.ReturnedToInstant, notReverted.Observed);

        // The real revert: the saved state loaded into a new QEMU over a fresh overlay on the frozen layer.
        var how = await GuestSnapshots.RevertAsync(_guest, _guest.Disk, snapshot, NewFile);
        var restored = new RevertEvidence(SnapshotKind.WithMemory, atSnapshot, await InstantMarkers.ReadAsync(_guest.Agent));
        output.WriteLine($"{how}: {restored.Observed}; agent after {_guest.BootToAgent?.TotalSeconds:0.00} s");
        Assert.Equal(RevertMethod.MemoryRestored, how.Method);
        Assert.True(restored.ReturnedToInstant, restored.Observed);
        Assert.True(restored.MemoryBack && restored.AfterRevert.BootId == atSnapshot.BootId, restored.Observed);
        // The restored guest runs on and writes: its disk is the new overlay, not the frozen layer.
        await _guest.Agent.ShellAsync("echo alive > /root/after-restore && sync", new GuestExecOptions { Check = true });

        // A cold boot on the same frozen layer brings the disk back, but never the memory: refuted.
        var cold = NewFile("cold", "cold.qcow2");
        await QemuImg.Local.CreateAsync(cold, "qcow2", options: new CreateOptions { BackingFile = snapshot.FrozenLayer!, BackingFormat = "qcow2" });
        await _guest.BootAgainAsync(new Dictionary<string, string> { [_guest.Disk] = cold });
        var coldBoot = new RevertEvidence(SnapshotKind.WithMemory, atSnapshot, await InstantMarkers.ReadAsync(_guest.Agent));
        output.WriteLine($"cold boot: {coldBoot.Observed}");
        Assert.True(coldBoot.DiskBack, coldBoot.Observed);
        Assert.False(coldBoot.ReturnedToInstant, coldBoot.Observed);
        // Why: the memory marker (a tmpfs file) is gone and the boot id is new.
        Assert.Empty(coldBoot.AfterRevert.Memory);
        Assert.NotEqual(atSnapshot.BootId, coldBoot.AfterRevert.BootId);
        // The same cold boot is what a disk-only kind claims, and there it is confirmed.
        Assert.True((coldBoot with { Kind = SnapshotKind.DiskOnly }).ReturnedToInstant);
    }

    [Fact]
    public async Task Given_a_memory_state_When_restored_with_a_disk_missing_or_from_a_file_that_is_not_a_state_Then_it_is_refused_or_fails_in_one_line()
    {
        var snapshot = await GuestSnapshots.TakeAsync(_guest, _guest.Disk, SnapshotKind.WithMemory, "mem2", NewFile);
        var e = await Assert.ThrowsAsync<LabUsageException>(() => _guest.RestoreAsync(new Dictionary<string, string>(), snapshot.MemoryFile!));
        Assert.Contains("a memory state restores only with every disk at its instant", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);

        var garbage = NewFile("garbage", "garbage.mem");
        await File.WriteAllBytesAsync(garbage, new byte[4096]);
        var overlay = NewFile("o", "garbage-overlay.qcow2");
        await QemuImg.Local.CreateAsync(overlay, "qcow2", options: new CreateOptions { BackingFile = snapshot.FrozenLayer!, BackingFormat = "qcow2" });
        var failed = await Assert.ThrowsAnyAsync<LabException>(() => _guest.RestoreAsync(new Dictionary<string, string> { [_guest.Disk] = overlay }, garbage));
        output.WriteLine(failed.Message);
        Assert.Contains("saved VM state", failed.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', failed.Message);
        // The guest starts again cold afterwards, so a failed restore leaves nothing hanging.
        await _guest.BootAgainAsync(new Dictionary<string, string> { [_guest.Disk] = await NewOverlayAsync(snapshot.FrozenLayer!) });
        Assert.NotEmpty((await InstantMarkers.ReadAsync(_guest.Agent)).BootId);
    }

    private async Task<string> NewOverlayAsync(string below)
    {
        var path = NewFile("o", $"o-{Guid.NewGuid():N}.qcow2");
        await QemuImg.Local.CreateAsync(path, "qcow2", options: new CreateOptions { BackingFile = below, BackingFormat = "qcow2" });
        return path;
    }

    [Fact]
    public async Task Given_a_writer_killed_mid_run_or_finished_before_an_operation_Then_ran_to_the_end_and_writing_throughout_are_refuted()
    {
        var writer = await SequenceWriter.StartAsync(_guest.Agent, new SequenceWriterOptions { Path = "/root/killed.txt", Count = 50_000_000 });
        var before = await writer.WaitForLinesAsync(10_000, TimeSpan.FromMinutes(2));
        await _guest.Agent.ShellAsync("pkill -KILL -f killed.txt", new GuestExecOptions());
        var end = await writer.WaitForExitAsync(TimeSpan.FromMinutes(2));
        output.WriteLine(end.Summary);
        Assert.False(end.RanToTheEnd, end.Summary);
        Assert.Equal(137, end.ExitCode);
        Assert.Matches(@"^exit 137 after \S+ s with [\d,.]+ of 50[,.]000[,.]000 lines flushed", end.Summary);
        Assert.True(new WriterOverlap("snapshot", before, end.Lines, end.Count).WritingThroughout);

        var small = await SequenceWriter.StartAsync(_guest.Agent, new SequenceWriterOptions { Path = "/root/small.txt", Count = 5_000 });
        var done = await small.WaitForExitAsync(TimeSpan.FromMinutes(2));
        Assert.True(done.RanToTheEnd, done.Summary);
        // An operation that starts after the writer finished did not run under it.
        var after = await small.ReadProgressAsync();
        Assert.False(new WriterOverlap("snapshot", after, after, 5_000).WritingThroughout);
    }
}
