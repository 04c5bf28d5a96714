using LabKernel.Block;
using LabKernel.Images;
using static LabKernel.IntegrationTests.Block.BlockLab;

namespace LabKernel.IntegrationTests.Block;

public sealed class NegativeTests : IAsyncLifetime
{
    private readonly BlockLab _lab = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _lab.DisposeAsync();

    private string[] Files() => Directory.GetFiles(_lab.Folder, "*.qcow2").Order().ToArray();

    // Length and content, not mtime: QEMU may rewrite a header it opened read-write with the same bytes.
    private Dictionary<string, string> Fingerprints() => Files().ToDictionary(f => f, f => LabKernel.Host.FileHash.Sha256Async(f).GetAwaiter().GetResult() + "/" + new FileInfo(f).Length);

    [Fact]
    public async Task Given_a_chain_When_committing_a_layer_into_itself_or_upwards_Then_invalid_range_and_nothing_changes()
    {
        var top = await _lab.ThreeLayersAsync();
        var machine = await _lab.StartAsync(top);
        var block = machine.Block();
        var before = Fingerprints();

        var same = await Assert.ThrowsAsync<InvalidCommitRangeException>(() => block.StartCommitAsync("disk0", "mid.qcow2", "mid.qcow2"));
        await Assert.ThrowsAsync<InvalidCommitRangeException>(() => block.StartCommitAsync("disk0", "base.qcow2", "mid.qcow2"));

        Assert.Contains("same layer", same.Message);
        Assert.Equal("base.qcow2 <- mid.qcow2 <- top.qcow2 (active)", (await block.QueryChainAsync("disk0")).ToText());
        Assert.Empty(await block.QueryJobsAsync());
        await _lab.StopAllAsync();
        // Same files, and every one with the same bytes: a refused commit writes nothing.
        Assert.Equal(before, Fingerprints());
        await _lab.AssertAllCleanAsync();
    }

    [Fact]
    public async Task Given_a_machine_When_naming_an_unknown_disk_layer_or_node_Then_unknown_node_errors()
    {
        var top = await _lab.ThreeLayersAsync();
        var machine = await _lab.StartAsync(top);
        var block = machine.Block();

        var disk = await Assert.ThrowsAsync<UnknownBlockNodeException>(() => block.QueryChainAsync("nodisk"));
        var layer = await Assert.ThrowsAsync<UnknownBlockNodeException>(() => block.StartCommitAsync("disk0", "nosuch.qcow2"));
        var node = await Assert.ThrowsAsync<UnknownBlockNodeException>(() => block.RemoveNodeAsync("nosuchnode"));
        var target = await Assert.ThrowsAsync<UnknownBlockNodeException>(() => block.StartMirrorAsync("disk0", new MirrorTarget.Node("nosuchtarget")));

        Assert.Equal("nodisk", disk.Name);
        Assert.Equal("nosuch.qcow2", layer.Name);
        Assert.Equal("nosuchnode", node.Name);
        Assert.Contains("nosuchtarget", target.Message);
        Assert.Empty(await block.QueryJobsAsync());
        await _lab.StopAllAsync();
        await _lab.AssertAllCleanAsync();
    }

    [Fact]
    public async Task Given_an_existing_file_When_snapshotting_or_mirroring_onto_it_Then_overlay_exists_and_the_file_is_untouched()
    {
        var top = await _lab.ThreeLayersAsync();
        var victim = _lab.PathOf("victim.qcow2");
        await QemuImg.Local.CreateAsync(victim, "qcow2", Size);
        await QemuIo.WritePatternAsync(victim, 0, M, 0x42);
        var machine = await _lab.StartAsync(top);
        var block = machine.Block();
        var before = Fingerprints();

        var snap = await Assert.ThrowsAsync<OverlayExistsException>(() => block.SnapshotAsync("disk0", victim));
        await Assert.ThrowsAsync<OverlayExistsException>(() => block.SnapshotAsync("disk0", victim, SnapshotMethod.AddThenSnapshot));
        await Assert.ThrowsAsync<OverlayExistsException>(() => block.SnapshotAsync(
            [new ExternalSnapshotRequest("disk0", _lab.PathOf("fresh.qcow2")), new ExternalSnapshotRequest("disk0", victim)]));
        await Assert.ThrowsAsync<OverlayExistsException>(() => block.StartMirrorAsync("disk0", new MirrorTarget.NewFile(victim)));

        Assert.Equal(victim, snap.Path);
        Assert.False(File.Exists(_lab.PathOf("fresh.qcow2")));
        Assert.Equal("base.qcow2 <- mid.qcow2 <- top.qcow2 (active)", (await block.QueryChainAsync("disk0")).ToText());
        await _lab.StopAllAsync();
        Assert.Equal(before[victim], Fingerprints()[victim]);
        await AssertPatternAsync(victim, 0, M, 0x42);
        await _lab.AssertAllCleanAsync();
    }

    [Fact]
    public async Task Given_a_missing_target_or_layer_When_mirroring_onto_it_or_reverting_to_it_Then_missing_or_unknown_errors_and_nothing_is_created()
    {
        var top = await _lab.ThreeLayersAsync();
        var machine = await _lab.StartAsync(top);
        var block = machine.Block();

        var missing = await Assert.ThrowsAsync<OverlayMissingException>(() => block.StartMirrorAsync("disk0", new MirrorTarget.ExistingFile(_lab.PathOf("gone.qcow2"))));
        await Assert.ThrowsAsync<OverlayMissingException>(() => block.AddImageNodeAsync(_lab.PathOf("gone.qcow2"), "gone"));
        await Assert.ThrowsAsync<UnknownBlockNodeException>(() => LabKernel.Snapshots.ExternalRevert.RevertAsync(machine, "disk0", "gone.qcow2", _lab.PathOf("r.qcow2")));

        Assert.Equal(_lab.PathOf("gone.qcow2"), missing.Path);
        Assert.False(File.Exists(_lab.PathOf("gone.qcow2")));
        Assert.False(File.Exists(_lab.PathOf("r.qcow2")));
        Assert.False(machine.HasExited);
        await _lab.StopAllAsync();
        await _lab.AssertAllCleanAsync();
    }

    [Fact]
    public async Task Given_a_chain_the_lab_did_not_create_When_an_operation_would_write_or_delete_an_image_nobody_named_Then_it_is_refused_before_anything_changes()
    {
        // A researcher's chain, made with their own qemu-img (not the lab's QemuImg, which marks what it makes).
        var b = _lab.PathOf("their-base.qcow2");
        var m = _lab.PathOf("their-mid.qcow2");
        var t = _lab.PathOf("their-top.qcow2");
        await LabKernel.Processes.ProcessRunner.RunAsync("qemu-img", ["create", "-q", "-f", "qcow2", b, "64M"]);
        await LabKernel.Processes.ProcessRunner.RunAsync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x11 0 1M", b]);
        await LabKernel.Processes.ProcessRunner.RunAsync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", b, "-F", "qcow2", m]);
        await LabKernel.Processes.ProcessRunner.RunAsync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", m, "-F", "qcow2", t]);
        await LabKernel.Processes.ProcessRunner.RunAsync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x22 1M 1M", t]);
        var before = Fingerprints();
        var machine = await _lab.StartAsync(new LabKernel.Machines.DriveSpec(t, "disk0"));
        var block = machine.Block();

        // A commit into "the base" (not named), the document's HMP commit, deleting the layers a revert abandons.
        var commit = await Assert.ThrowsAsync<LabKernel.Host.ForeignImageException>(() => block.StartCommitAsync("disk0", top: "their-mid.qcow2"));
        var hmp = await Assert.ThrowsAsync<LabKernel.Host.ForeignImageException>(() => block.HmpCommitAsync("disk0"));
        var revert = await Assert.ThrowsAsync<LabKernel.Host.ForeignImageException>(() =>
            LabKernel.Snapshots.ExternalRevert.RevertAsync(machine, "disk0", "their-base.qcow2", _lab.PathOf("new-top.qcow2"), deleteAbandoned: true));

        Assert.Equal(b, commit.Path);
        Assert.Contains("commit", hmp.Operation, StringComparison.Ordinal);
        Assert.Equal(t, revert.Path);
        Assert.False(machine.HasExited, "the revert was refused before the machine was stopped");
        Assert.Empty(await block.QueryJobsAsync());
        Assert.False(File.Exists(_lab.PathOf("new-top.qcow2")));
        await _lab.StopAllAsync();

        // Offline the same: qemu-img commit without -b would write their mid.
        await Assert.ThrowsAsync<LabKernel.Host.ForeignImageException>(() => QemuImg.Local.CommitAsync(t));
        // qemu-img create over their file would truncate it.
        await Assert.ThrowsAsync<OverlayExistsException>(() => QemuImg.Local.CreateAsync(m, "qcow2", 1 << 20));
        Assert.Equal(before, Fingerprints());
        // Named explicitly, the same commit is the caller's choice and runs.
        await QemuImg.Local.CommitAsync(t, new CommitOptions { Base = m });
        Assert.NotEqual(before[m], Fingerprints()[m]);
    }
}
