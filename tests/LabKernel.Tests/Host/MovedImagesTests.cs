using LabKernel.Host;

namespace LabKernel.Tests.Host;

/// <summary>Notebook 03's "after the move QEMU holds none of the moved images", with each fault it guards against.</summary>
public sealed class MovedImagesTests
{
    private static readonly (string From, string To)[] Moved = [("/run/x/vm-base.qcow2", "/run/x/other-fs/vm-base.qcow2"), ("/run/x/mirror-a.qcow2", "/run/x/other-fs/mirror-a.qcow2")];
    private const string Active = "/run/x/mirror-b.qcow2";

    [Fact]
    public void Given_QEMU_holding_only_the_active_image_and_other_files_Then_it_is_confirmed()
    {
        var (holds, observed) = MovedImages.Judge(["/dev/null", "/run/x/disk.qcow2", Active, "anon_inode:[eventfd]"], Moved, Active);
        Assert.True(holds);
        Assert.Contains("none of the 2 moved images and no deleted file", observed, StringComparison.Ordinal);
    }

    [Fact]
    public void Given_QEMU_still_holding_the_original_moved_to_another_filesystem_Then_it_is_refuted_naming_it()
    {
        var (holds, observed) = MovedImages.Judge([Active, "/run/x/vm-base.qcow2 (deleted)"], Moved, Active);
        Assert.False(holds);
        Assert.Contains("still held: /run/x/vm-base.qcow2 (deleted)", observed, StringComparison.Ordinal);
    }

    [Fact]
    public void Given_QEMU_holding_a_moved_image_by_its_new_path_Then_it_is_refuted()
    {
        Assert.False(MovedImages.Judge([Active, "/run/x/other-fs/mirror-a.qcow2"], Moved, Active).Holds);
    }

    [Fact]
    public void Given_an_empty_or_unrelated_list_without_the_active_image_Then_it_is_refuted_as_a_reading_in_doubt()
    {
        var (holds, observed) = MovedImages.Judge([], Moved, Active);
        Assert.False(holds);
        Assert.Contains("NOT among them", observed, StringComparison.Ordinal);
    }
}
