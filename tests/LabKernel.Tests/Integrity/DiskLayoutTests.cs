using System.Buffers.Binary;
using LabKernel.IntegrationTests.Integrity;
using LabKernel.Integrity;

namespace LabKernel.Tests.Integrity;

public sealed class DiskLayoutTests
{
    private const long Mi = 1 << 20;

    private static MemoryStream Disk(long size = 32 * Mi) => new(new byte[size]);

    private static void PutExtSuperblock(Stream disk, long offset)
    {
        var magic = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(magic, 0xEF53);
        disk.Position = offset + 1024 + 56;
        disk.Write(magic);
    }

    [Fact]
    public void A_whole_disk_filesystem_like_the_lab_guests_is_read_as_it_is()
    {
        using var disk = Disk();
        PutExtSuperblock(disk, 0);
        Assert.Null(DiskLayout.FindExtFilesystem(disk, "root.qcow2"));
    }

    [Theory]
    [InlineData("mbr")]
    [InlineData("gpt")]
    public void On_a_partitioned_disk_the_largest_partition_with_an_ext_filesystem_is_chosen(string scheme)
    {
        using var disk = Disk();
        PartitionTable.Write(disk, scheme, [(1 * Mi, 2 * Mi), (4 * Mi, 8 * Mi), (12 * Mi, 16 * Mi)]);
        PutExtSuperblock(disk, 1 * Mi);
        PutExtSuperblock(disk, 4 * Mi);
        // Partition 3 is bigger but holds no ext filesystem (swap, XFS, ...).

        var parts = DiskLayout.ReadPartitions(disk);
        Assert.Equal([(1, 1 * Mi, 2 * Mi), (2, 4 * Mi, 8 * Mi), (3, 12 * Mi, 16 * Mi)], parts.Select(p => (p.Number, p.Offset, p.Length)));
        Assert.All(parts, p => Assert.Equal(scheme, p.Scheme));
        Assert.Equal(2, DiskLayout.FindExtFilesystem(disk, "d")!.Number);
    }

    [Fact]
    public void A_disk_without_a_readable_filesystem_gives_a_one_line_reason()
    {
        using var blank = Disk();
        var none = Assert.Throws<LabException>(() => DiskLayout.FindExtFilesystem(blank, "user.qcow2"));
        Assert.Contains("no partition table", none.Message, StringComparison.Ordinal);

        using var lvm = Disk();
        PartitionTable.Write(lvm, "mbr", [(1 * Mi, 30 * Mi)]);
        var noExt = Assert.Throws<LabException>(() => DiskLayout.FindExtFilesystem(lvm, "user.qcow2"));
        Assert.Contains("none of user.qcow2's 1 partition(s)", noExt.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', noExt.Message);
    }
}
