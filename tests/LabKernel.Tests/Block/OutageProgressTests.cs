using LabKernel.Block;
using LabKernel.Jobs;

namespace LabKernel.Tests.Block;

public sealed class OutageProgressTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    private static BlockJobProgress S(double seconds, long offset) => new("mirror-2", JobStatus.Running, offset, 8000, T0.AddSeconds(seconds), "ok", "sample");

    [Fact]
    public void Given_a_flat_offset_while_the_server_is_away_When_analysed_Then_the_job_stood_still_and_moved_again_after_the_restart()
    {
        // Cut at 2 s, back at 6 s; the sample at 2.2 s is within the settling time and still moving.
        BlockJobProgress[] samples = [S(1, 100), S(2.2, 130), S(3, 140), S(4, 140), S(5, 140), S(6.5, 140), S(7.5, 150), S(8, 200)];

        var p = OutageProgress.Of(samples, T0.AddSeconds(2), T0.AddSeconds(6), offsetAtCut: 120);

        Assert.Equal(3, p.SamplesDuring);
        Assert.True(p.StoodStill);
        Assert.Equal(T0.AddSeconds(7.5), p.MovingAgainAt);
    }

    [Fact]
    public void Given_the_offset_grows_during_the_outage_When_analysed_Then_it_did_not_stand_still()
    {
        BlockJobProgress[] samples = [S(3, 140), S(4, 160)];

        var p = OutageProgress.Of(samples, T0.AddSeconds(2), T0.AddSeconds(6), offsetAtCut: 120);

        Assert.False(p.StoodStill);
        Assert.Equal((140, 160), (p.MinOffset, p.MaxOffset));
        Assert.Null(p.MovingAgainAt);
    }

    [Fact]
    public void Given_no_sample_in_the_outage_When_analysed_Then_it_says_so_and_moving_again_counts_from_the_cut()
    {
        BlockJobProgress[] samples = [S(1, 100), S(7, 120), S(8, 130)];

        var p = OutageProgress.Of(samples, T0.AddSeconds(2), T0.AddSeconds(6), offsetAtCut: 120);

        Assert.False(p.StoodStill);
        Assert.Equal("no samples in the outage", p.ToString());
        Assert.Equal(T0.AddSeconds(8), p.MovingAgainAt);
    }
}
