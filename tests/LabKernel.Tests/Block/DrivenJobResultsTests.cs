using LabKernel.Block;
using LabKernel.Jobs;

namespace LabKernel.Tests.Block;

public sealed class DrivenJobResultsTests
{
    private static BlockJobResult Job(bool cancelled, long offset, long length, int errors = 0) =>
        new("commit-1", "commit", cancelled, !cancelled, offset, length, TimeSpan.FromSeconds(1),
            Enumerable.Range(0, errors).Select(_ => new BlockJobError("write", "report", DateTimeOffset.UnixEpoch)).ToArray());

    [Fact]
    public void Given_HMP_was_sent_When_summarised_Then_it_worked_and_names_the_files_it_wrote()
    {
        var c = new CommitIntoBacking(new HmpCommitResult("commit all", ["/run/vm-base.qcow2"]), null, null, "/run/disk.qcow2", "/run/vm-base.qcow2");

        Assert.True(c.SentHmp);
        Assert.True(c.Worked);
        Assert.Equal("sent 'commit all', which wrote vm-base.qcow2 (all made by the lab)", c.Summary);
    }

    [Theory]
    [InlineData(true, 100, 100, 0, true)]
    [InlineData(true, 50, 100, 0, false)]
    [InlineData(true, 100, 100, 1, false)]
    [InlineData(false, 100, 100, 0, false)]
    public void Given_a_commit_by_node_When_judged_Then_it_worked_only_cancelled_at_READY_with_everything_copied_and_no_error(bool cancelled, long offset, long length, int errors, bool worked)
    {
        var c = new CommitIntoBacking(null, "refused", Job(cancelled, offset, length, errors), "/run/disk.qcow2", "/run/vm-base.qcow2");

        Assert.False(c.SentHmp);
        Assert.Equal(worked, c.Worked);
        Assert.Contains("from disk.qcow2 into vm-base.qcow2 by node", c.Summary);
    }

    [Fact]
    public void Given_the_work_ended_before_READY_When_asked_Then_it_ended_while_copying()
    {
        var chain = new LiveChain("disk0", "disk0-dev", []);
        var run = new BlockJobRun(Job(true, 1, 1), chain, chain, []) { AtWorkEnd = new BlockJobProgress("m", JobStatus.Running, 1, 2, DateTimeOffset.UnixEpoch, null, "sample") };

        Assert.True(run.WorkEndedWhileCopying);
        Assert.False((run with { AtWorkEnd = run.AtWorkEnd! with { Status = JobStatus.Ready } }).WorkEndedWhileCopying);
        Assert.False((run with { AtWorkEnd = null }).WorkEndedWhileCopying);
    }
}
