using System.Text.Json.Nodes;
using LabKernel.Block;
using LabKernel.Qmp;
using LabKernel.Tests.Jobs;

namespace LabKernel.Tests.Block;

/// <summary>
/// Each row of <see cref="QmpErrorTranslation"/>, driven through the block layer over a scripted QMP peer that
/// answers with QEMU's own error class and wording (quoted from QEMU's source, see each row's Source).
/// </summary>
public sealed class QmpErrorTranslationTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("lab-qmp-errors-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>disk0 (top.qcow2 over base.qcow2), whose QEMU answers <paramref name="failing"/> with the error.</summary>
    private static Task<ScriptedQmpPeer> PeerAsync(string failing, string errorClass, string description) =>
        OneDiskQemu.StartAsync((cmd, _) => cmd == failing ? ScriptedQmpPeer.Error(errorClass, description) : null);

    [Fact]
    public async Task Given_QEMU_answers_DeviceNotFound_When_a_commit_starts_Then_the_device_it_names_is_an_unknown_node()
    {
        await using var peer = await PeerAsync("block-commit", "DeviceNotFound", "Device 'disk0' not found");
        var block = new BlockLayer(peer.Client);

        var e = await Assert.ThrowsAsync<UnknownBlockNodeException>(() => block.StartCommitAsync("disk0", "top.qcow2", "/i/base.qcow2"));

        Assert.Equal("disk0", e.Name);
        var inner = Assert.IsType<QmpErrorException>(e.InnerException);
        Assert.Equal("DeviceNotFound", inner.ErrorClass);
    }

    [Fact]
    public async Task Given_QEMU_cannot_find_the_snapshot_node_When_a_snapshot_is_taken_Then_the_node_is_unknown()
    {
        await using var peer = await PeerAsync("transaction", "GenericError", "Cannot find device='' nor node-name='disk0'");
        var block = new BlockLayer(peer.Client);

        var e = await Assert.ThrowsAsync<UnknownBlockNodeException>(() => block.SnapshotAsync("disk0", Path.Combine(_folder, "s1.qcow2")));

        Assert.Equal("disk0", e.Name);
        Assert.Equal("transaction", Assert.IsType<QmpErrorException>(e.InnerException).CommandName);
        Assert.False(File.Exists(Path.Combine(_folder, "s1.qcow2")));
    }

    [Fact]
    public async Task Given_QEMU_cannot_find_the_mirror_target_node_When_a_mirror_starts_Then_the_target_is_unknown()
    {
        await using var peer = await PeerAsync("blockdev-mirror", "GenericError", "Cannot find device='nosuch' nor node-name='nosuch'");
        var block = new BlockLayer(peer.Client);

        var e = await Assert.ThrowsAsync<UnknownBlockNodeException>(() => block.StartMirrorAsync("disk0", new MirrorTarget.Node("nosuch")));

        Assert.Equal("nosuch", e.Name);
    }

    [Fact]
    public async Task Given_QEMU_cannot_find_the_stream_device_When_a_stream_starts_Then_the_device_is_unknown()
    {
        await using var peer = await PeerAsync("block-stream", "GenericError", "Cannot find device='disk0' nor node-name='disk0'");
        var block = new BlockLayer(peer.Client);

        var e = await Assert.ThrowsAsync<UnknownBlockNodeException>(() => block.StartStreamAsync("disk0"));

        Assert.Equal("disk0", e.Name);
    }

    [Fact]
    public async Task Given_QEMU_has_no_such_node_When_it_is_deleted_Then_the_node_is_unknown()
    {
        await using var peer = await PeerAsync("blockdev-del", "GenericError", "Failed to find node with node-name='gone'");
        var block = new BlockLayer(peer.Client);

        var e = await Assert.ThrowsAsync<UnknownBlockNodeException>(() => block.RemoveNodeAsync("gone"));

        Assert.Equal("gone", e.Name);
    }

    [Fact]
    public async Task Given_a_node_still_in_use_When_it_is_deleted_Then_QEMUs_error_is_thrown_as_it_came()
    {
        await using var peer = await PeerAsync("blockdev-del", "GenericError", "Node 'tgt' is busy: node is used as backing hd of 'disk0'");
        var block = new BlockLayer(peer.Client);

        var e = await Assert.ThrowsAsync<QmpErrorException>(() => block.RemoveNodeAsync("tgt"));

        Assert.Equal("GenericError", e.ErrorClass);
    }

    [Theory]
    [InlineData("blockdev-add", "GenericError", "Cannot find device='' nor node-name='x'")]
    [InlineData("block-commit", "GenericError", "Failed to find node with node-name='x'")]
    [InlineData("block-commit", "GenericError", "'x' is not in this backing file chain")]
    [InlineData("snapshot-save", "CommandNotFound", "The command snapshot-save has not been found")]
    [InlineData("block-job-complete", "DeviceNotActive", "Block job 'x' not found")]
    public void Given_an_error_no_row_describes_When_translated_Then_it_stays_a_QMP_error(string command, string errorClass, string description)
    {
        var e = new QmpErrorException(errorClass, description, new JsonObject { ["execute"] = command }.ToJsonString());

        Assert.Null(QmpErrorTranslation.Find(e));
        Assert.Same(e, QmpErrorTranslation.Translate(e));
    }

    [Fact]
    public void Given_the_table_When_read_Then_every_generic_error_row_names_its_commands_and_wording()
    {
        var generic = QmpErrorTranslation.Rows.Where(r => r.ErrorClass == "GenericError").ToList();
        Assert.NotEmpty(generic);
        Assert.All(generic, r =>
        {
            Assert.NotNull(r.Commands);
            Assert.NotNull(r.Wording);
            Assert.False(string.IsNullOrWhiteSpace(r.Source));
        });
    }
}
