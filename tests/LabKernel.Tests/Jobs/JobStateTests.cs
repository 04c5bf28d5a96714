using LabKernel.Jobs;

namespace LabKernel.Tests.Jobs;

/// <summary>The progress a job keeps from its samples.</summary>
public sealed class JobStateTests
{
    [Fact]
    public void Given_two_samples_kept_in_the_other_order_When_the_older_shows_less_copied_Then_the_newer_progress_stays_whole()
    {
        var time = TimeProvider.System;
        var state = new JobState("stream-1", "stream", time, null);
        state.SetStatus(JobStatus.Running, "JOB_STATUS_CHANGE", publish: false);
        var partWay = new BlockJobProgress("stream-1", JobStatus.Running, 4 << 20, 64 << 20, time.GetUtcNow(), "ok", "sample");
        var atStart = new BlockJobProgress("stream-1", JobStatus.Running, 0, 60 << 20, time.GetUtcNow().AddSeconds(-2), "ok", "JOB_STATUS_CHANGE");

        Assert.Equal(partWay, state.KeepSample(partWay));
        // The sample taken at the start, kept last: the part-way offset and its length stay, not 0 of 60 MiB.
        var kept = state.KeepSample(atStart);
        Assert.Equal((4L << 20, 64L << 20), (kept.Offset, kept.Length));
        Assert.Equal(partWay, state.Last);
        // A later sample that copied more is kept, its status the events' own.
        var further = partWay with { Offset = 8 << 20, Status = JobStatus.Ready };
        Assert.Equal(further with { Status = JobStatus.Running }, state.KeepSample(further));
    }
}
