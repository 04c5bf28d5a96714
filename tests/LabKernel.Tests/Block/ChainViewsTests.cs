using LabKernel.Block;
using LabKernel.Tests.Jobs;

namespace LabKernel.Tests.Block;

/// <summary>
/// The remembered chains of one QMP connection: a snapshot uses them instead of looking the chain up, and every
/// operation that changes a chain (a job when it starts and when it concludes, deleting a node) forgets them.
/// </summary>
public sealed class ChainViewsTests : IDisposable
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);
    private readonly string _folder = Directory.CreateTempSubdirectory("lab-views-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>disk0 (top.qcow2 over base.qcow2); jobs start, and run when the test emits their events.</summary>
    private static Task<ScriptedQmpPeer> PeerAsync() => OneDiskQemu.StartAsync();

    private static int LookUps(ScriptedQmpPeer peer) => peer.Commands.Count(c => c == "query-block");

    [Fact]
    public async Task Given_a_chain_read_once_When_two_snapshots_follow_Then_neither_looks_the_chain_up_again()
    {
        await using var peer = await PeerAsync();
        var block = new BlockLayer(peer.Client);
        await block.QueryChainAsync("disk0");

        var first = await block.SnapshotAsync("disk0", Path.Combine(_folder, "s1.qcow2"));
        var second = await block.SnapshotAsync("disk0", Path.Combine(_folder, "s2.qcow2"));

        Assert.Equal(1, LookUps(peer));
        Assert.Equal("base.qcow2 <- top.qcow2 <- s1.qcow2 <- s2.qcow2 (active)", second.ToText());
        var lastSnapshot = peer.Received.Last(r => r.Command == "transaction").Arguments["actions"]![0]!["data"]!;
        Assert.Equal(first.Active.NodeName, lastSnapshot["node-name"]!.GetValue<string>());
    }

    [Fact]
    public async Task Given_a_remembered_chain_When_a_job_on_that_disk_concludes_Then_the_next_snapshot_looks_the_chain_up()
    {
        await using var peer = await PeerAsync();
        var block = new BlockLayer(peer.Client);
        await block.QueryChainAsync("disk0");
        await using var job = await block.StartStreamAsync("disk0", options: new BlockStreamOptions { JobId = "s1" });
        var lookUpsWhileRunning = LookUps(peer);
        // Read the chain while the job runs: the job's conclusion must forget it before its completion is seen.
        await block.QueryChainAsync("disk0");

        await peer.StatusAsync("s1", "created", "running", "waiting", "pending", "concluded");
        await job.WaitAsync(Limit);
        await block.SnapshotAsync("disk0", Path.Combine(_folder, "after.qcow2"));

        Assert.Equal(2, lookUpsWhileRunning);
        Assert.Equal(lookUpsWhileRunning + 2, LookUps(peer));
    }

    [Fact]
    public async Task Given_a_remembered_chain_When_a_node_is_deleted_Then_the_next_snapshot_looks_the_chain_up()
    {
        await using var peer = await PeerAsync();
        var block = new BlockLayer(peer.Client);
        await block.QueryChainAsync("disk0");

        await block.RemoveNodeAsync("tgt");
        await block.SnapshotAsync("disk0", Path.Combine(_folder, "after.qcow2"));

        Assert.Equal(2, LookUps(peer));
    }

    [Fact]
    public async Task Given_two_block_layers_When_one_remembers_a_chain_Then_the_other_does_not_see_it_as_views_belong_to_their_layer_not_the_process()
    {
        await using var peer = await PeerAsync();
        var one = new BlockLayer(peer.Client);
        var other = new BlockLayer(peer.Client);

        await one.QueryChainAsync("disk0");

        Assert.Equal(["disk0"], one.Views.Disks);
        Assert.Empty(other.Views.Disks);
    }
}
