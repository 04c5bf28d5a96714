using System.Text.Json.Nodes;
using LabKernel.Block;
using LabKernel.Host;
using LabKernel.Tests.Jobs;

namespace LabKernel.Tests.Block;

/// <summary>
/// A VM with two disks, as a researcher's domain has: disk0 on the lab's overlay over its backing file, and disk1
/// (their data disk, data.qcow2 over data-golden.raw) that the lab was not asked to use. Nothing the lab does to
/// disk0 may write or close disk1's images.
/// </summary>
public sealed class OtherDisksTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("lab-disks-").FullName;
    private readonly string _top;
    private readonly string _backing;
    private readonly string _data;
    private readonly string _dataGolden;

    public OtherDisksTests()
    {
        _top = Path.Combine(_folder, "disk.qcow2");
        _backing = Path.Combine(_folder, "vm-base.qcow2");
        _data = Path.Combine(_folder, "user", "data.qcow2");
        _dataGolden = Path.Combine(_folder, "user", "data-golden.raw");
        LabFiles.MarkCreated(_top);
        LabFiles.MarkCreated(_backing);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static JsonObject Node(string name, string file, string drv, string? backing = null) => new()
    {
        ["node-name"] = name,
        ["file"] = file,
        ["drv"] = drv,
        ["image"] = new JsonObject { ["filename"] = file, ["format"] = drv, ["full-backing-filename"] = backing, ["backing-filename"] = backing },
    };

    // After a pivot QEMU keeps the old top's monitor-owned nodes open until they are deleted: they stay listed.
    private JsonArray Nodes() =>
    [
        Node("top", _top, "qcow2", _backing), Node("top-file", _top, "file"),
        Node("vmbase", _backing, "qcow2"), Node("vmbase-file", _backing, "file"),
        Node("libvirt-2-format", _data, "qcow2", _dataGolden), Node("libvirt-2-storage", _data, "file"),
        Node("libvirt-3-format", _dataGolden, "raw"), Node("libvirt-3-storage", _dataGolden, "file"),
    ];

    private JsonArray Blocks(bool dataHasBacking) =>
    [
        new JsonObject
        {
            ["device"] = "", ["qdev"] = "/machine/peripheral/disk0-dev/virtio-backend",
            ["inserted"] = new JsonObject { ["file"] = _top, ["image"] = new JsonObject { ["filename"] = _top, ["backing-image"] = new JsonObject { ["filename"] = _backing } } },
        },
        new JsonObject
        {
            ["device"] = "", ["qdev"] = "/machine/peripheral/disk1-dev/virtio-backend",
            ["inserted"] = new JsonObject
            {
                ["file"] = _data,
                ["image"] = dataHasBacking ? new JsonObject { ["filename"] = _data, ["backing-image"] = new JsonObject { ["filename"] = _dataGolden } } : new JsonObject { ["filename"] = _data },
            },
        },
    ];

    private Task<ScriptedQmpPeer> PeerAsync(bool dataHasBacking, Func<bool>? disk0HasTop = null) =>
        ScriptedQmpPeer.StartAsync((p, cmd, args) => Task.FromResult<JsonNode?>(cmd switch
        {
            "qom-get" => JsonValue.Create(disk0HasTop?.Invoke() == false ? "vmbase" : "top"),
            "query-named-block-nodes" => Nodes(),
            "query-block" => Blocks(dataHasBacking),
            "human-monitor-command" => JsonValue.Create(""),
            _ => new JsonObject(),
        }));

    [Fact]
    public async Task Given_a_second_disk_with_a_backing_file_the_lab_did_not_create_When_the_documents_HMP_commit_is_asked_for_Then_nothing_is_sent_and_the_error_names_that_disk()
    {
        await using var peer = await PeerAsync(dataHasBacking: true);
        var block = new BlockLayer(peer.Client);

        var e = await Assert.ThrowsAsync<ForeignImageException>(() => block.HmpCommitAsync("disk0"));

        Assert.Contains("commit all", e.Message, StringComparison.Ordinal);
        Assert.Contains("disk1", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("human-monitor-command", peer.Commands);
        Assert.DoesNotContain("block-commit", peer.Commands);
    }

    [Fact]
    public async Task Given_every_disk_with_a_backing_file_is_the_labs_When_the_HMP_commit_is_asked_for_Then_commit_all_is_sent_and_reports_what_it_wrote()
    {
        await using var peer = await PeerAsync(dataHasBacking: false);
        var block = new BlockLayer(peer.Client);

        var result = await block.HmpCommitAsync("disk0");

        Assert.Equal("commit all", result.Command);
        Assert.Equal([_backing], result.Written);
        var hmp = peer.Received.Single(r => r.Command == "human-monitor-command");
        Assert.Equal("commit all", hmp.Arguments["command-line"]!.GetValue<string>());
    }

    [Fact]
    public async Task Given_a_pivot_off_disk0s_top_When_the_nodes_left_behind_are_released_Then_only_the_old_tops_nodes_go_and_the_other_disks_stay_open()
    {
        var pivoted = false;
        await using var peer = await PeerAsync(dataHasBacking: true, disk0HasTop: () => !pivoted);
        var block = new BlockLayer(peer.Client);
        var before = await block.QueryChainAsync("disk0");
        Assert.Equal([_top, _backing], before.Filenames);

        pivoted = true;
        var released = await block.ReleaseNodesLeftBehindAsync(before);

        Assert.Equal(["top", "top-file"], released);
        var deleted = peer.Received.Where(r => r.Command == "blockdev-del").Select(r => r.Arguments["node-name"]!.GetValue<string>()).ToArray();
        Assert.Equal(["top", "top-file"], deleted);
    }
}
