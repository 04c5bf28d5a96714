using System.Reflection;
using System.Text.Json.Nodes;
using LabKernel.Block;
using LabKernel.Tests.Jobs;

namespace LabKernel.Tests.Block;

/// <summary>
/// The arguments the block layer sends, built from typed records: QEMU's member names (kebab-case), options left
/// out when not set, and the explicit <c>backing: null</c> that opens an overlay without its backing file.
/// </summary>
public sealed class QmpArgumentsTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("lab-args-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static Task<ScriptedQmpPeer> PeerAsync() => OneDiskQemu.StartAsync();

    private static JsonObject Sent(ScriptedQmpPeer peer, string command) => peer.Received.Last(r => r.Command == command).Arguments;

    [Fact]
    public async Task Given_a_mirror_to_a_new_file_with_some_options_When_started_Then_drive_mirror_gets_QEMUs_names_and_only_the_options_set()
    {
        await using var peer = await PeerAsync();
        var block = new BlockLayer(peer.Client);
        var target = Path.Combine(_folder, "copy.qcow2");

        await using var job = await block.StartMirrorAsync("disk0", new MirrorTarget.NewFile(target),
            new MirrorOptions { Sync = MirrorSync.Top, BufferSize = 1 << 20, OnTargetError = BlockErrorPolicy.Stop, JobId = "m1" });

        Assert.Equal(
            JsonNode.Parse($$"""{"job-id":"m1","device":"disk0","target":"{{target}}","sync":"top","auto-finalize":true,"auto-dismiss":false,"format":"qcow2","mode":"absolute-paths","buf-size":1048576,"on-target-error":"stop"}"""),
            Sent(peer, "drive-mirror"), JsonNode.DeepEquals);
    }

    [Fact]
    public async Task Given_a_mirror_to_a_node_When_started_Then_blockdev_mirror_gets_no_format_or_mode()
    {
        await using var peer = await PeerAsync();
        var block = new BlockLayer(peer.Client);

        await using var job = await block.StartMirrorAsync("disk0", new MirrorTarget.Node("tgt"), new MirrorOptions { JobId = "m2" });

        Assert.Equal(
            JsonNode.Parse("""{"job-id":"m2","device":"disk0","target":"tgt","sync":"full","auto-finalize":true,"auto-dismiss":false}"""),
            Sent(peer, "blockdev-mirror"), JsonNode.DeepEquals);
    }

    [Fact]
    public async Task Given_an_intermediate_commit_with_a_speed_When_started_Then_block_commit_names_top_and_base_nodes()
    {
        await using var peer = await PeerAsync();
        var block = new BlockLayer(peer.Client);

        await using var job = await block.StartCommitAsync("disk0", "top.qcow2", "/i/base.qcow2", new BlockCommitOptions { Speed = 0, OnError = BlockErrorPolicy.Enospc, JobId = "c1" });

        Assert.Equal(
            JsonNode.Parse("""{"job-id":"c1","device":"disk0","top-node":"disk0","base-node":"#block123","auto-finalize":true,"auto-dismiss":false,"speed":0,"on-error":"enospc"}"""),
            Sent(peer, "block-commit"), JsonNode.DeepEquals);
    }

    [Fact]
    public async Task Given_a_stream_down_to_a_base_When_started_Then_block_stream_names_the_base_node()
    {
        await using var peer = await PeerAsync();
        var block = new BlockLayer(peer.Client);

        await using var job = await block.StartStreamAsync("disk0", "base.qcow2", new BlockStreamOptions { AutoFinalize = false, JobId = "s1" });

        Assert.Equal(
            JsonNode.Parse("""{"job-id":"s1","device":"disk0","auto-finalize":false,"auto-dismiss":false,"base-node":"#block123"}"""),
            Sent(peer, "block-stream"), JsonNode.DeepEquals);
    }

    [Fact]
    public async Task Given_an_overlay_opened_without_its_backing_and_with_an_error_to_inject_When_added_Then_blockdev_add_nests_blkdebug_and_sends_backing_null()
    {
        await using var peer = await PeerAsync();
        var block = new BlockLayer(peer.Client);
        var file = Path.Combine(_folder, "tgt.qcow2");
        await File.WriteAllBytesAsync(file, []);

        await block.AddImageNodeAsync(file, "tgt", withBacking: false, inject: new BlkdebugError("write_aio", 5, Once: true));

        Assert.Equal(
            JsonNode.Parse($$$"""{"driver":"qcow2","node-name":"tgt","file":{"image":{"filename":"{{{file}}}","driver":"file"},"inject-error":[{"event":"write_aio","errno":5,"once":true}],"driver":"blkdebug"},"backing":null}"""),
            Sent(peer, "blockdev-add"), JsonNode.DeepEquals);
    }

    [Fact]
    public async Task Given_a_snapshot_of_one_disk_When_taken_Then_the_transaction_holds_one_blockdev_snapshot_sync_action()
    {
        await using var peer = await PeerAsync();
        var block = new BlockLayer(peer.Client);
        var overlay = Path.Combine(_folder, "s1.qcow2");

        await block.SnapshotAsync([new ExternalSnapshotRequest("disk0", overlay, "disk0-s1")]);

        Assert.Equal(
            JsonNode.Parse($$$"""{"actions":[{"type":"blockdev-snapshot-sync","data":{"node-name":"disk0","snapshot-file":"{{{overlay}}}","snapshot-node-name":"disk0-s1","format":"qcow2","mode":"absolute-paths"}}]}"""),
            Sent(peer, "transaction"), JsonNode.DeepEquals);
    }

    [Fact]
    public async Task Given_the_bitmaps_of_a_disk_When_queried_Then_query_named_block_nodes_asks_for_the_flat_list()
    {
        await using var peer = await PeerAsync();
        var block = new BlockLayer(peer.Client);

        await block.QueryBitmapsAsync("disk0");

        Assert.Equal(JsonNode.Parse("""{"flat":true}"""), Sent(peer, "query-named-block-nodes"), JsonNode.DeepEquals);
    }

    [Fact]
    public async Task Given_an_NBD_export_When_opened_as_a_node_Then_blockdev_add_names_the_unix_socket_the_export_and_the_reconnect_delay_in_seconds()
    {
        await using var peer = await PeerAsync();
        var block = new BlockLayer(peer.Client);
        // The export's daemon is not started: only the node's options are under test, and they need its socket and name.
        var export = (NbdExport)Activator.CreateInstance(typeof(NbdExport), BindingFlags.Instance | BindingFlags.NonPublic, null,
            [LabKernel.Host.LocalHost.Instance, "/i/remote.qcow2", "qcow2", "/run/lab/nbd.sock", "lab"], null)!;

        await block.AddNbdNodeAsync(export, "remote", TimeSpan.FromSeconds(7.9));

        Assert.Equal(
            JsonNode.Parse("""{"driver":"nbd","node-name":"remote","server":{"type":"unix","path":"/run/lab/nbd.sock"},"export":"lab","reconnect-delay":7}"""),
            Sent(peer, "blockdev-add"), JsonNode.DeepEquals);
    }
}
