using System.Text.Json.Nodes;
using LabKernel.Block;
using LabKernel.Images;
using LabKernel.Snapshots;

namespace LabKernel.Tests.Jobs;

public sealed class ChainAndSnapshotRenderingTests
{
    private static LiveChain Chain() => new("disk0", "/machine/peripheral/disk0-dev/virtio-backend",
    [
        new LiveLayer("disk0-snap2", "/i/overlay2.qcow2", "qcow2", "/i/overlay1.qcow2"),
        new LiveLayer("#block301", "/i/overlay1.qcow2", "qcow2", "base.qcow2"),
        new LiveLayer("#block122", "/i/base.qcow2", "qcow2", null),
    ]);

    [Fact]
    public void Given_a_live_chain_When_layers_are_found_by_node_path_or_file_name_Then_each_resolves_and_reads_like_qemu_img()
    {
        var chain = Chain();

        Assert.Equal("base.qcow2 <- overlay1.qcow2 <- overlay2.qcow2 (active)", chain.ToText());
        Assert.Same(chain.Layers[1], chain.Find("#block301"));
        Assert.Same(chain.Layers[1], chain.Find("/i/overlay1.qcow2"));
        Assert.Same(chain.Layers[2], chain.Find("base.qcow2"));
        Assert.Null(chain.Find("other.qcow2"));
        Assert.Equal(2, chain.DepthOf(chain.Base));
    }

    [Fact]
    public void Given_query_block_json_When_parsed_Then_the_device_chain_is_matched_by_qdev_id()
    {
        var blocks = JsonNode.Parse("""[{"device":"","qdev":"/machine/peripheral/disk1-dev/virtio-backend","inserted":{"node-name":"disk1","image":{"filename":"/i/other.qcow2","format":"qcow2"}}},{"device":"","qdev":"/machine/peripheral/disk0-dev/virtio-backend","inserted":{"node-name":"disk0","image":{"filename":"/i/top.qcow2","format":"qcow2","backing-filename":"base.qcow2","backing-image":{"filename":"/i/base.qcow2","format":"raw"}}}}]""")!.AsArray();
        var nodes = JsonNode.Parse("""[{"node-name":"#block7","drv":"raw","file":"/i/base.qcow2"}]""")!.AsArray();

        var chain = LiveChain.FromQmp("disk0", "disk0-dev", blocks, nodes)!;

        Assert.Equal(["/i/top.qcow2", "/i/base.qcow2"], chain.Filenames);
        Assert.Equal(["disk0", "#block7"], chain.Layers.Select(l => l.NodeName));
        Assert.Equal("raw", chain.Base.Format);
        Assert.Null(LiveChain.FromQmp("disk9", "disk9-dev", blocks, nodes));
    }

    [Fact]
    public void Given_internal_snapshots_When_tabulated_Then_columns_follow_qemu_img_snapshot_list()
    {
        var list = new[]
        {
            new InternalSnapshot("1", "before", 3 * 1024 * 1024, DateTimeOffset.FromUnixTimeSeconds(1700000000), TimeSpan.FromSeconds(75.5), null),
        };

        var table = InternalSnapshots.ToTable(list);

        var lines = table.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("ID        TAG", lines[0]);
        Assert.Contains("before", lines[1]);
        Assert.Contains("3 MiB", lines[1]);
        Assert.Contains("0000:01:15.500", lines[1]);
        Assert.EndsWith("--", lines[1].TrimEnd());
    }
}
