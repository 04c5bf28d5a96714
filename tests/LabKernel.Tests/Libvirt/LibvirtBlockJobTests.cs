using LabKernel.Jobs;
using LabKernel.Libvirt;
using LabKernel.Tests.Jobs;

namespace LabKernel.Tests.Libvirt;

/// <summary>
/// What only libvirt's job does, on a stand-in for libvirt: after libvirtd closed the connection the job opens it
/// again and asks for itself, since events sent meanwhile are lost; and its final status is kept in the result.
/// </summary>
public sealed class LibvirtBlockJobTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Given_a_copy_in_sync_while_libvirtd_restarted_When_the_connection_closes_Then_the_job_reconnects_samples_and_counts_as_ready()
    {
        var libvirt = new StandInLibvirt("dom") { JobInfo = (100, 100) };
        await using var job = new LibvirtBlockJob(libvirt, "vda", "copy");

        libvirt.Send(new ConnectionClosedEventRecord(DateTimeOffset.UtcNow, 1));
        await job.WaitForReadyAsync(Limit);

        Assert.Equal(1, libvirt.Reconnects);
        Assert.Equal("reconnected", job.Last.Trigger);
        Assert.Equal((100, 100), (job.Last.Offset, job.Last.Length));
    }

    [Fact]
    public async Task Given_a_copy_gone_while_libvirtd_restarted_When_the_connection_closes_Then_the_wait_fails_saying_how_it_ended_is_unknown()
    {
        var libvirt = new StandInLibvirt("dom") { JobInfo = null };
        await using var job = new LibvirtBlockJob(libvirt, "vda", "copy");

        libvirt.Send(new ConnectionClosedEventRecord(DateTimeOffset.UtcNow, 1));
        var e = await Assert.ThrowsAsync<LabException>(() => job.WaitAsync(Limit));

        Assert.Contains("ended while libvirtd was away", e.Message, StringComparison.Ordinal);
        Assert.Contains("the copy job on dom vda", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Given_a_ready_copy_When_it_is_pivoted_Then_libvirt_is_asked_to_pivot_and_the_result_keeps_libvirts_final_status()
    {
        var libvirt = new StandInLibvirt("dom");
        await using var job = new LibvirtBlockJob(libvirt, "vda", "copy");
        libvirt.JobInfo = (100, 100);
        libvirt.Emit(LibvirtBlockJobStatus.Ready);

        await job.WaitForReadyAsync(Limit);
        await job.PivotAsync();
        var result = await job.WaitAsync(Limit);

        Assert.Equal([true], libvirt.Aborts);
        Assert.Equal(LibvirtBlockJobStatus.Completed, job.Outcome);
        Assert.Equal("completed", result.BackendStatus);
        Assert.Equal((true, false, 100L), (result.Completed, result.Cancelled, result.Offset));
        Assert.Equal([LibvirtBlockJobStatus.Ready, LibvirtBlockJobStatus.Completed], job.Events.Select(e => e.Status));
    }
}
