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

    private static readonly string[] Left = ["/run/x/vm-base.qcow2", "/run/x/disk.qcow2", "/run/x/mirror-a.qcow2"];

    [Fact]
    public void Given_QEMU_holding_only_the_active_image_after_the_pivots_Then_none_left_is_held()
    {
        var (holds, observed) = MovedImages.JudgeLeft(["/dev/null", Active], Left, Active);
        Assert.True(holds, observed);
        Assert.EndsWith("none of the 3 images the VM left", observed, StringComparison.Ordinal);
    }

    [Fact]
    public void Given_QEMU_still_holding_an_image_the_VM_left_Then_it_is_refuted_naming_it()
    {
        var (holds, observed) = MovedImages.JudgeLeft([Active, "/run/x/disk.qcow2"], Left, Active);
        Assert.False(holds);
        Assert.EndsWith("still held: disk.qcow2", observed, StringComparison.Ordinal);
    }

    [Fact]
    public void Given_an_empty_reading_of_the_open_files_Then_none_left_held_is_refuted_as_in_doubt_not_confirmed()
    {
        // A stale pid or paths that do not resolve as the lab names them name none of the images left either.
        var (holds, observed) = MovedImages.JudgeLeft([], Left, Active);
        Assert.False(holds);
        Assert.Contains("NOT among them (the reading is in doubt)", observed, StringComparison.Ordinal);
    }
}
