using LabKernel.Block;
using LabKernel.Guests;
using LabKernel.Host;
using LabKernel.Images;
using LabKernel.Integrity;
using LabKernel.IntegrationTests.Block;
using LabKernel.Processes;

namespace LabKernel.IntegrationTests.Faults;

/// <summary>
/// What only the lab's user may read is created so: raw copies of a disk (0600 in a 0700 folder), the guest image's
/// SSH key (0600), and the sockets of QEMU's monitor, its guest agent and the NBD exports (in 0700 folders).
/// </summary>
public sealed class FileModesTests : IAsyncLifetime
{
    private const UnixFileMode GroupOrOther = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
                                              UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    private readonly BlockLab _lab = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _lab.DisposeAsync();

    [Fact]
    public async Task Given_a_disk_read_offline_Then_its_view_is_0600_in_a_0700_folder()
    {
        var raw = _lab.PathOf("fs.raw");
        await ProcessRunner.RunAsync("truncate", ["-s", "16M", raw]);
        await ProcessRunner.RunAsync("mkfs.ext4", ["-q", "-F", raw]);
        var image = _lab.PathOf("fs.qcow2");
        await ProcessRunner.RunAsync("qemu-img", ["convert", "-O", "qcow2", raw, image]);
        var scratch = _lab.PathOf("scratch");
        Directory.CreateDirectory(scratch);

        await using var reader = await OfflineLayerReader.OpenAsync(image, scratch);

        Assert.Equal(Private.File, File.GetUnixFileMode(reader.ViewFile));
        Assert.Equal(Private.Folder, File.GetUnixFileMode(Path.GetDirectoryName(reader.ViewFile)!));
    }

    [Fact]
    public async Task Given_the_guest_image_Then_its_SSH_key_is_0600()
    {
        var image = await GuestImageBuilder.EnsureAsync();

        Assert.Equal(Private.File, File.GetUnixFileMode(image.SshPrivateKey));
    }

    [Fact]
    public async Task Given_a_machine_and_an_NBD_export_Then_their_sockets_are_in_0700_folders_no_one_else_can_enter()
    {
        var disk = _lab.PathOf("disk.qcow2");
        await QemuImg.Local.CreateAsync(disk, "qcow2", BlockLab.Size);
        var machine = await _lab.StartAsync(disk);
        var target = _lab.PathOf("target.qcow2");
        await QemuImg.Local.CreateAsync(target, "qcow2", BlockLab.Size);
        var sockets = LabPaths.CreatePrivateRuntimeFolder("lab-test-nbd");
        try
        {
            await using var export = await NbdExport.StartAsync(target, Path.Combine(sockets, "nbd.sock"));

            Assert.True(File.Exists(machine.QmpSocket));
            Assert.Equal(Private.Folder, File.GetUnixFileMode(machine.RuntimeFolder));
            Assert.True(File.Exists(export.SocketPath));
            Assert.Equal(Private.Folder, File.GetUnixFileMode(sockets));
            Assert.Equal((UnixFileMode)0, File.GetUnixFileMode(Path.GetDirectoryName(export.SocketPath)!) & GroupOrOther);
        }
        finally
        {
            LabPaths.TryDeleteFolder(sockets);
        }
    }
}
