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

    [Fact]
    public void Given_a_domains_used_targets_When_a_data_disk_is_plugged_Then_it_takes_the_first_free_name_and_with_none_left_a_one_line_error()
    {
        Assert.Equal("vdb", VirtioTargets.FirstFree(new HashSet<string> { "vda", "sda" }, "d"));
        Assert.Equal("vdd", VirtioTargets.FirstFree(new HashSet<string> { "vda", "vdb", "vdc", "vde" }, "d"));
        var all = new HashSet<string>(["vda", .. Enumerable.Range(0, VirtioTargets.DataDiskCount).Select(VirtioTargets.DataDisk)]);
        Assert.Equal("vdz", VirtioTargets.FirstFree(new HashSet<string>(all.Where(t => t != "vdz")), "d"));
        var e = Assert.Throws<LabException>(() => VirtioTargets.FirstFree(all, "full"));
        Assert.Equal("domain 'full' has no free virtio disk name for the lab's data disk: vdb to vdz are all taken (26 vd disks); detach one of yours or give the lab a domain with fewer disks", e.Message);
    }
}
