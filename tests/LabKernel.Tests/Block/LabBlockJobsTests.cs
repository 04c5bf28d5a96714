using System.Text.Json.Nodes;
using LabKernel.Block;
using LabKernel.Jobs;
using LabKernel.Libvirt;
using LabKernel.Tests.Jobs;

namespace LabKernel.Tests.Block;

/// <summary>
/// The jobs <see cref="ILabBlock"/> starts on either backend, seen through the QEMU backend on a scripted one-disk
/// QEMU: what is sent, and the <see cref="ILabJob"/> that comes back; and the capabilities each backend reports.
/// </summary>
public sealed class LabBlockJobsTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("lab-ilabblock-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static JsonObject Sent(ScriptedQmpPeer peer, string command) => peer.Received.Last(r => r.Command == command).Arguments;

    [Theory]
    [InlineData(true, "top")]
    [InlineData(false, "full")]
    public async Task Given_the_QEMU_block_layer_as_ILabBlock_When_a_mirror_is_started_Then_drive_mirror_copies_the_top_or_all_into_a_new_file_and_a_mirror_job_on_the_disk_comes_back(bool shallow, string sync)
    {
        await using var peer = await OneDiskQemu.StartAsync();
        ILabBlock block = new BlockLayer(peer.Client);
        var target = Path.Combine(_folder, "copy.qcow2");

        await using var job = await block.StartMirrorAsync("disk0", target, shallow);

        var sent = Sent(peer, "drive-mirror");
        Assert.Equal(sync, sent["sync"]!.GetValue<string>());
        Assert.Equal("absolute-paths", sent["mode"]!.GetValue<string>());
        Assert.Equal(target, sent["target"]!.GetValue<string>());
        Assert.Equal((LabJobKind.Mirror, "disk0", "mirror"), (job.Kind, job.Disk, job.Type));
        Assert.Equal(sent["job-id"]!.GetValue<string>(), job.Id);
    }

    [Fact]
    public async Task Given_the_QEMU_block_layer_as_ILabBlock_When_a_mirror_onto_an_existing_file_is_started_Then_it_is_refused_before_anything_is_sent()
    {
        await using var peer = await OneDiskQemu.StartAsync();
        ILabBlock block = new BlockLayer(peer.Client);
        var target = Path.Combine(_folder, "there.qcow2");
        await File.WriteAllTextAsync(target, "");

        await Assert.ThrowsAsync<OverlayExistsException>(() => block.StartMirrorAsync("disk0", target));

        Assert.DoesNotContain("drive-mirror", peer.Commands);
    }

    [Fact]
    public async Task Given_the_QEMU_block_layer_as_ILabBlock_When_a_commit_of_the_active_layer_is_started_Then_an_active_commit_job_that_waits_at_ready_comes_back()
    {
        await using var peer = await OneDiskQemu.StartAsync();
        ILabBlock block = new BlockLayer(peer.Client);

        await using var job = await block.StartCommitAsync("disk0", top: null, @base: "/i/base.qcow2");

        var sent = Sent(peer, "block-commit");
        Assert.Equal(("disk0", "#block123"), (sent["top-node"]!.GetValue<string>(), sent["base-node"]!.GetValue<string>()));
        Assert.Equal((LabJobKind.ActiveCommit, "disk0"), (job.Kind, job.Disk));
        Assert.DoesNotContain("job-complete", peer.Commands);
    }

    [Fact]
    public async Task Given_the_QEMU_block_layer_as_ILabBlock_When_a_stream_is_started_Then_block_stream_is_sent_and_a_stream_job_on_the_disk_comes_back()
    {
        await using var peer = await OneDiskQemu.StartAsync();
        ILabBlock block = new BlockLayer(peer.Client);

        await using var job = await block.StartStreamAsync("disk0");

        Assert.Equal("disk0", Sent(peer, "block-stream")["device"]!.GetValue<string>());
        Assert.Equal((LabJobKind.Stream, "disk0"), (job.Kind, job.Disk));
    }

    [Fact]
    public async Task Given_each_backends_block_layer_When_asked_its_capabilities_Then_QMP_has_backups_HMP_and_node_mirrors_and_libvirts_own_API_has_none_of_them()
    {
        await using var peer = await OneDiskQemu.StartAsync();
        ILabBlock qemu = new BlockLayer(peer.Client);
        // The capabilities are the type's: no domain is needed to read them.
        ILabBlock libvirt = new LibvirtBlock(null!);

        Assert.Equal(LabBlockCapabilities.Qmp, qemu.Capabilities);
        Assert.True(qemu.Capabilities is { Backup: true, Hmp: true, MirrorToNode: true, JobControl: true, ErrorPolicies: true });
        Assert.Equal(LabBlockCapabilities.Common, libvirt.Capabilities);
        Assert.True(libvirt.Capabilities is { Backup: false, Hmp: false, MirrorToNode: false, JobControl: false, ErrorPolicies: false });
    }
}
