using LabKernel.Backends;

namespace LabKernel.Tests.Guests;

/// <summary>Both backends name their data disks through <see cref="VirtioTargets"/>: vdb to vdz, and no further.</summary>
public sealed class VirtioTargetsTests
{
    [Fact]
    public void Given_data_disk_indexes_When_named_Then_they_run_from_vdb_to_vdz_and_a_26th_is_refused()
    {
        Assert.Equal("vdb", VirtioTargets.DataDisk(0));
        Assert.Equal("vdz", VirtioTargets.DataDisk(VirtioTargets.DataDiskCount - 1));
        Assert.Equal("/dev/vdc", VirtioTargets.Device(VirtioTargets.DataDisk(1)));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => VirtioTargets.DataDisk(VirtioTargets.DataDiskCount));
        Assert.Contains("vdb to vdz", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => VirtioTargets.DataDisk(-1));
    }
}
