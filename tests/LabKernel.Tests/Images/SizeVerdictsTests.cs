using LabKernel.Images;

namespace LabKernel.Tests.Images;

/// <summary>
/// Notebook 03's size verdicts (<see cref="SizeVerdicts"/>), each confirmed on the readings a working system gives and
/// refuted on the fault it guards against.
/// </summary>
public sealed class SizeVerdictsTests
{
    private const long MiB = 1 << 20;

    [Fact]
    public void The_share_of_a_write_is_the_notebooks_former_expression_for_every_write_size()
    {
        const double NotebookMiB = 1048576.0;
        for (var writeMiB = 1; writeMiB <= 4096; writeMiB++)
        {
            Assert.Equal((long)(writeMiB * NotebookMiB * 0.9), SizeVerdicts.MostOfWrite(writeMiB * 1048576L));
        }
    }

    [Theory]
    [InlineData(64, 0, 0, true)]
    [InlineData(58, 0, 0, true)]     // 90% of 64 MiB is 57.6 MiB
    [InlineData(57, 0, 0, false)]    // part of the write went elsewhere
    [InlineData(0, 64, 0, false)]    // the write landed in the original, not the mirror (no pivot)
    [InlineData(64, 1, 0, false)]    // the mirror grew, but so did the original
    [InlineData(64, 0, 64, false)]   // the write landed in the newest and in the older mirror
    public void Given_the_growth_of_each_image_after_a_64_MiB_dd_When_judged_Then_the_write_landed_only_in_the_target_or_not(long targetMiB, long originalMiB, long olderMiB, bool expected)
    {
        Assert.Equal(expected, SizeVerdicts.WriteLandedOnlyIn(targetMiB * MiB, 64 * MiB, originalMiB * MiB, olderMiB * MiB));
    }

    [Fact]
    public void Given_an_active_commit_that_moved_less_than_the_write_When_judged_Then_it_is_refuted()
    {
        // 3's active commit after a 64 MiB write: the base's data grew from 10 to 60 MiB (50 MiB, under 57.6) or to 80 MiB.
        Assert.False(SizeVerdicts.WriteLanded(60 * MiB - 10 * MiB, 64 * MiB));
        Assert.True(SizeVerdicts.WriteLanded(80 * MiB - 10 * MiB, 64 * MiB));
    }

    [Theory]
    [InlineData(100, 10, 0, 110, true, true)]     // HMP commit: everything moved down, the overlay emptied
    [InlineData(100, 10, 100, 110, false, true)]  // commit by node cancelled at READY: moved down, the overlay kept its data
    [InlineData(100, 10, 100, 10, false, false)]  // nothing moved: the backing file did not grow
    [InlineData(100, 10, 0, 99, true, false)]     // less than 9/10 of the overlay's data reached the backing file
    [InlineData(100, 10, 100, 110, true, false)]  // HMP commit that did not empty the overlay
    [InlineData(100, 10, 10, 110, true, false)]   // the overlay kept a tenth: not under it
    [InlineData(100, 10, 9, 110, true, true)]
    public void Given_data_sizes_before_and_after_a_commit_When_judged_Then_the_data_moved_down_or_not(long overlayBefore, long backingBefore, long overlayAfter, long backingAfter, bool emptied, bool expected)
    {
        Assert.Equal(expected, SizeVerdicts.DataMovedDown(overlayBefore * MiB, backingBefore * MiB, overlayAfter * MiB, backingAfter * MiB, emptied));
    }

    [Theory]
    [InlineData(650, 650, true)]
    [InlineData(682, 650, true)]    // +32 MiB: within 650/20 = 32.5 MiB
    [InlineData(618, 650, true)]
    [InlineData(700, 650, false)]   // the second mirror copied more than the switched image
    [InlineData(600, 650, false)]   // or less: a copy cut short
    [InlineData(0, 650, false)]
    public void Given_two_mirrors_When_compared_Then_they_are_about_as_big_only_within_5_percent(long secondMiB, long firstMiB, bool expected)
    {
        Assert.Equal(expected, SizeVerdicts.AboutAsBig(secondMiB * MiB, firstMiB * MiB));
    }

    [Theory]
    [InlineData(366, 366, 16, true)]
    [InlineData(367, 366, 16, true)]    // a little more: background writes since
    [InlineData(350, 366, 16, false)]   // the image before the switch: 16 MiB short, 4.4%, within 5% yet refuted
    [InlineData(650, 650, 64, true)]
    [InlineData(618, 650, 64, false)]   // within 5% but a whole half of the write missing
    [InlineData(586, 650, 64, false)]
    public void Given_a_second_mirror_When_judged_against_the_switched_image_and_the_write_into_it_Then_a_copy_of_the_old_image_is_refuted(long copyMiB, long switchedMiB, long writtenMiB, bool expected)
    {
        Assert.Equal(expected, SizeVerdicts.CopiedTheSwitchedImage(copyMiB * MiB, switchedMiB * MiB, writtenMiB * MiB));
    }
}
