using LabKernel.Host;

namespace LabKernel.Tests.Host;

/// <summary>
/// Host-side evidence behind notebook verdicts, fed the fault each guards against: a layer with one byte changed
/// (01's "reading overlay1 did not modify it", 05's "the base image is no longer modified"), a move that stayed on one
/// filesystem (03's "the original moved to another filesystem"), an image QEMU still holds after the pivots.
/// </summary>
public sealed class HostEvidenceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lab-hostevidence-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Given_a_layer_hashed_before_When_one_byte_of_it_changes_Then_its_SHA256_differs_and_unchanged_it_is_the_same()
    {
        var layer = Path.Combine(_dir, "overlay1.qcow2");
        var bytes = new byte[3 << 20];
        new Random(1).NextBytes(bytes);
        await File.WriteAllBytesAsync(layer, bytes);
        var before = await FileHash.Sha256Async(layer);

        Assert.Equal(before, await FileHash.Sha256Async(layer));
        await using (var f = new FileStream(layer, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = (2 << 20) + 17;
            var b = f.ReadByte();
            f.Position--;
            f.WriteByte((byte)(b ^ 0x01));
        }
        Assert.NotEqual(before, await FileHash.Sha256Async(layer));
    }

    [Fact]
    public async Task Given_a_file_moved_within_one_folder_When_the_filesystems_are_looked_up_Then_they_are_the_same_mount()
    {
        var from = Path.Combine(_dir, "vm-base.qcow2");
        await File.WriteAllTextAsync(from, "layer");
        var moved = Path.Combine(Directory.CreateDirectory(Path.Combine(_dir, "moved")).FullName, "vm-base.qcow2");
        File.Move(from, moved);

        var (fromFs, toFs) = (await FilesystemOf.LookUpAsync(_dir), await FilesystemOf.LookUpAsync(moved));

        // 03 checks fromFs.MountPoint != toFs.MountPoint: refuted for a move that never left the filesystem.
        Assert.Equal(fromFs.MountPoint, toFs.MountPoint);
        Assert.NotEqual(fromFs.MountPoint, (await FilesystemOf.LookUpAsync("/proc/self")).MountPoint);
    }

    [Fact]
    public void Given_QEMUs_open_files_after_the_pivots_When_an_image_the_VM_left_is_among_them_Then_it_is_named()
    {
        string[] left = ["/run/x/vm-base.qcow2", "/run/x/disk.qcow2", "/run/x/mirror-a.qcow2"];

        Assert.Empty(MovedImages.StillHeld(["/dev/null", "/run/x/mirror-b.qcow2"], left));
        Assert.Equal(["/run/x/disk.qcow2"], MovedImages.StillHeld(["/run/x/mirror-b.qcow2", "/run/x/disk.qcow2"], left));
    }
}
