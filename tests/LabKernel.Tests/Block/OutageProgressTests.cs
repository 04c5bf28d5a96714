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

    [Theory]
    // The server took 2 s to exit after SIGTERM (over SSH on a busy host): requests in flight landed until 4 s.
    [InlineData(4.5, true)]
    // The same samples judged from the stop's start: the landing at 3 s counts, and "flat" is refuted.
    [InlineData(0, false)]
    public void Given_a_server_that_exits_late_When_the_outage_is_judged_Then_it_starts_when_the_server_is_gone(double goneAtSeconds, bool stoodStill)
    {
        BlockJobProgress[] samples = [S(1, 100), S(2.6, 120), S(3, 136), S(4.6, 136), S(5, 136), S(5.5, 136), S(7, 150)];
        var run = new OutageRun(new BlockJobResult("mirror-2", "mirror", true, false, 150, 8000, TimeSpan.FromSeconds(7), []), samples,
            T0, T0.AddSeconds(2), 120, T0.AddSeconds(6), T0.AddSeconds(6), T0.AddSeconds(7), [], true, T0.AddSeconds(5))
        { GoneAt = goneAtSeconds == 0 ? default : T0.AddSeconds(goneAtSeconds - 0.5) };

        Assert.Equal(stoodStill, run.Progress.StoodStill);
        if (!stoodStill)
        {
            Assert.Equal((120L, 136L), (run.Progress.MinOffset, run.Progress.MaxOffset));
        }
    }

    [Fact]
    public void Given_a_job_that_moved_only_after_the_wait_for_it_gave_up_and_the_limit_was_lifted_Then_it_did_not_move_again_in_time()
    {
        // Cut at 2 s, back at 6 s; flat until the wait's limit passed and the speed limit was lifted at 66 s; the job
        // moved at 67 s (pushed by the lift, or late): 03's "moves again" is refuted, not confirmed by that sample.
        BlockJobProgress[] samples = [S(1, 100), S(3, 140), S(4, 140), S(10, 140), S(40, 140), S(65, 140), S(67, 900)];
        var run = new OutageRun(new BlockJobResult("mirror-2", "mirror", true, false, 8000, 8000, TimeSpan.FromSeconds(70), []), samples,
            T0, T0.AddSeconds(2), 130, T0.AddSeconds(6), LiftedAt: T0.AddSeconds(66), T0.AddSeconds(69), [], true, T0.AddSeconds(5));

        Assert.True(run.Progress.StoodStill);
        Assert.Null(run.Progress.MovingAgainAt);
        // The same samples with the move before the lift: confirmed at that sample.
        var inTime = run with { LiftedAt = T0.AddSeconds(68) };
        Assert.Equal(T0.AddSeconds(67), inTime.Progress.MovingAgainAt);
    }
}
