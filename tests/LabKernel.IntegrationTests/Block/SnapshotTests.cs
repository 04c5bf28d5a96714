using System.Text.Json.Nodes;
using LabKernel.Block;
using LabKernel.Images;
using LabKernel.Machines;
using LabKernel.Snapshots;
using static LabKernel.IntegrationTests.Block.BlockLab;

namespace LabKernel.IntegrationTests.Block;

public sealed class SnapshotTests : IAsyncLifetime
{
    private readonly BlockLab _lab = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _lab.DisposeAsync();

    private async Task<(string A, string B)> TwoDisksAsync()
    {
        var a = _lab.PathOf("a.qcow2");
        var b = _lab.PathOf("b.qcow2");
        await QemuImg.Local.CreateAsync(a, "qcow2", Size);
        await QemuImg.Local.CreateAsync(b, "qcow2", Size);
        await QemuIo.WritePatternAsync(a, 0, M, 0x11);
        await QemuIo.WritePatternAsync(b, 0, M, 0x22);
        return (a, b);
    }

    [Theory]
    [InlineData(SnapshotMethod.SnapshotSync)]
    [InlineData(SnapshotMethod.AddThenSnapshot)]
    public async Task Given_two_disks_When_snapshotted_in_one_transaction_Then_both_get_overlays_and_new_writes_land_only_there(SnapshotMethod method)
    {
        var (a, b) = await TwoDisksAsync();
        var machine = await _lab.StartAsync(new DriveSpec(a, "disk0"), new DriveSpec(b, "disk1"));
        var block = machine.Block();

        var chains = await block.SnapshotAsync(
            [new ExternalSnapshotRequest("disk0", _lab.PathOf("a-s1.qcow2")), new ExternalSnapshotRequest("disk1", _lab.PathOf("b-s1.qcow2"))], method);
        await WriteLiveAsync(machine, "disk0", 0, M, 0x33);
        await WriteLiveAsync(machine, "disk1", 0, M, 0x44);

        Assert.Equal("a.qcow2 <- a-s1.qcow2 (active)", chains[0].ToText());
        Assert.Equal("b.qcow2 <- b-s1.qcow2 (active)", chains[1].ToText());
        Assert.True((await block.CheckChainAgreementAsync("disk0")).Agreement.Agrees);
        Assert.True((await block.CheckChainAgreementAsync("disk1")).Agreement.Agrees);
        await _lab.StopAllAsync();
        await AssertPatternAsync(a, 0, M, 0x11);
        await AssertPatternAsync(b, 0, M, 0x22);
        await AssertPatternAsync(_lab.PathOf("a-s1.qcow2"), 0, M, 0x33);
        await AssertPatternAsync(_lab.PathOf("b-s1.qcow2"), 0, M, 0x44);
        await _lab.AssertAllCleanAsync();
    }

    [Fact]
    public async Task Given_the_chain_changed_behind_the_labs_back_When_snapshotting_again_Then_the_lab_looks_it_up_and_returns_the_true_chain()
    {
        var (a, _) = await TwoDisksAsync();
        var machine = await _lab.StartAsync(a);
        var block = machine.Block();
        var first = await block.SnapshotAsync("disk0", _lab.PathOf("s1.qcow2"));
        await machine.Qmp.ExecuteAsync("blockdev-snapshot-sync", new JsonObject
        {
            ["node-name"] = first.Active.NodeName,
            ["snapshot-file"] = _lab.PathOf("raw.qcow2"),
            ["snapshot-node-name"] = "raw",
            ["format"] = "qcow2",
        });

        var chain = await block.SnapshotAsync("disk0", _lab.PathOf("s2.qcow2"));

        Assert.Equal("a.qcow2 <- s1.qcow2 <- raw.qcow2 <- s2.qcow2 (active)", chain.ToText());
        Assert.Equal(chain.Filenames, (await block.QueryChainAsync("disk0")).Filenames);
        Assert.True((await block.CheckChainAgreementAsync("disk0")).Agreement.Agrees);
        await _lab.StopAllAsync();
        await _lab.AssertAllCleanAsync();
    }

    [Fact]
    public async Task Given_a_running_disk_When_internal_snapshots_are_saved_loaded_and_deleted_Then_data_reverts_and_the_list_shows_vm_state()
    {
        var (a, _) = await TwoDisksAsync();
        var machine = await _lab.StartAsync(a);
        var block = machine.Block();

        await block.SaveInternalSnapshotAsync("before", ["disk0"]);
        await block.SaveInternalSnapshotAsync("hmp", ["disk0"], path: InternalSnapshotPath.HumanMonitor);
        await WriteLiveAsync(machine, "disk0", 0, M, 0x99);
        var list = await block.ListInternalSnapshotsAsync("disk0");
        await block.LoadInternalSnapshotAsync("before", ["disk0"]);

        Assert.Equal(["before", "hmp"], list.Select(s => s.Name));
        Assert.All(list, s => Assert.True(s.VmStateSize > 0, $"{s.Name} has no VM state"));
        Assert.Contains("before", InternalSnapshots.ToTable(list));
        await block.DeleteInternalSnapshotAsync("before", ["disk0"]);
        await block.DeleteInternalSnapshotAsync("hmp", ["disk0"], InternalSnapshotPath.HumanMonitor);
        Assert.Empty(await block.ListInternalSnapshotsAsync("disk0"));
        await _lab.StopAllAsync();
        Assert.Empty(await QemuImg.Local.ListSnapshotsAsync(a));
        await AssertPatternAsync(a, 0, M, 0x11);
        await _lab.AssertAllCleanAsync();
    }

    [Fact]
    public async Task Given_a_running_machine_When_a_system_checkpoint_is_taken_and_restored_Then_the_new_machine_runs_on_the_frozen_layer()
    {
        var (a, _) = await TwoDisksAsync();
        var machine = await _lab.StartAsync(a);
        var block = machine.Block();

        var cp = await block.CheckpointAsync(_lab.PathOf("mem.bin"), new Dictionary<string, string> { ["disk0"] = _lab.PathOf("a-after.qcow2") });
        await WriteLiveAsync(machine, "disk0", 0, M, 0x55);
        var restored = await SystemCheckpoints.RestoreAsync(cp, machine.Options, new Dictionary<string, string> { ["disk0"] = _lab.PathOf("a-restored.qcow2") });
        _lab.Track(restored.Machine);

        Assert.True(cp.Paused > TimeSpan.Zero);
        Assert.True(cp.MemoryBytes > 64 * 1024, $"memory file is {cp.MemoryBytes} bytes");
        Assert.Equal(a, cp.DiskLayers["disk0"]);
        var status = await restored.Machine.Qmp.ExecuteAsync("query-status");
        Assert.True(status!["running"]!.GetValue<bool>());
        Assert.Equal("a.qcow2 <- a-restored.qcow2 (active)", (await restored.Machine.Block().QueryChainAsync("disk0")).ToText());
        await _lab.StopAllAsync();
        await AssertPatternAsync(_lab.PathOf("a-restored.qcow2"), 0, M, 0x11);
        await AssertPatternAsync(_lab.PathOf("a-after.qcow2"), 0, M, 0x55);
        await _lab.AssertAllCleanAsync();
    }

    [Fact]
    public async Task Given_two_snapshots_When_reverted_to_the_first_layer_Then_a_new_machine_runs_on_a_fresh_overlay_and_the_abandoned_ones_are_kept()
    {
        var (a, _) = await TwoDisksAsync();
        var machine = await _lab.StartAsync(a);
        await machine.Block().SnapshotAsync("disk0", _lab.PathOf("s1.qcow2"));
        await WriteLiveAsync(machine, "disk0", 0, M, 0x66);
        await machine.Block().SnapshotAsync("disk0", _lab.PathOf("s2.qcow2"));

        var revert = await ExternalRevert.RevertAsync(machine, "disk0", "a.qcow2", _lab.PathOf("r1.qcow2"));
        _lab.Track(revert.Machine);

        Assert.Equal([_lab.PathOf("s2.qcow2"), _lab.PathOf("s1.qcow2")], revert.Abandoned);
        Assert.All(revert.Abandoned, f => Assert.True(File.Exists(f)));
        Assert.Equal("a.qcow2 <- r1.qcow2 (active)", (await revert.Machine.Block().QueryChainAsync("disk0")).ToText());
        await _lab.StopAllAsync();
        await AssertPatternAsync(_lab.PathOf("r1.qcow2"), 0, M, 0x11);
        await AssertPatternAsync(_lab.PathOf("s2.qcow2"), 0, M, 0x66);
        await _lab.AssertAllCleanAsync();
    }

    [Fact]
    public async Task Given_a_snapshot_When_reverted_with_deletion_asked_Then_the_abandoned_overlay_is_gone_and_the_journal_shows_the_steps()
    {
        var (a, _) = await TwoDisksAsync();
        var journal = new LabKernel.Journal.LabJournal();
        using var scope = LabKernel.Journal.LabJournal.BeginScope(journal);
        var machine = await _lab.StartAsync(a);
        await machine.Block().SnapshotAsync("disk0", _lab.PathOf("s1.qcow2"));

        var revert = await ExternalRevert.RevertAsync(machine, "disk0", a, _lab.PathOf("r1.qcow2"), deleteAbandoned: true);
        _lab.Track(revert.Machine);

        Assert.True(revert.AbandonedDeleted);
        Assert.False(File.Exists(_lab.PathOf("s1.qcow2")));
        Assert.True(machine.HasExited);
        var chain = await revert.Machine.Block().QueryChainAsync("disk0");
        Assert.Equal("a.qcow2 <- r1.qcow2 (active)", chain.ToText());
        Assert.Contains("r1.qcow2", chain.ToText());
        var text = LabKernel.Journal.JournalRendering.ToText(journal.Entries);
        Assert.Contains("blockdev-snapshot-sync", text);
        Assert.Contains("revert disk0 to a.qcow2", text);
        Assert.Contains("qemu-img create", text);
        await _lab.StopAllAsync();
        await _lab.AssertAllCleanAsync();
    }
}
