using System.Text.Json.Nodes;
using LabKernel.Jobs;
using LabKernel.Libvirt;

namespace LabKernel.Tests.Jobs;

/// <summary>
/// One contract, two backends: the same mirror scenarios (READY then complete, READY then cancel, a READY wait that
/// times out, a job that ends before READY, progress watched to the end) against <see cref="ILabJob"/> as QEMU's
/// <see cref="BlockJob"/> on a scripted QMP peer and as <see cref="LibvirtBlockJob"/> on a stand-in for libvirt.
/// </summary>
public abstract class LabJobContractTests
{
    protected static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);

    /// <summary>A mirror job started on the backend, and the backend's hand to move it along.</summary>
    protected interface IRunningMirror : IAsyncDisposable
    {
        ILabJob Job { get; }

        /// <summary>The backend reports the mirror in sync (READY).</summary>
        Task BecomeReadyAsync();

        /// <summary>The backend reports the job over before READY (as a stream or commit ends).</summary>
        Task EndWithoutReadyAsync();
    }

    protected abstract Task<IRunningMirror> StartMirrorAsync();

    /// <summary>The disk the scenarios' job works on.</summary>
    protected abstract string ExpectedDisk { get; }

    [Fact]
    public async Task Given_a_mirror_When_it_becomes_ready_and_is_completed_Then_the_result_says_completed_not_cancelled()
    {
        await using var run = await StartMirrorAsync();
        await run.BecomeReadyAsync();

        await run.Job.WaitForReadyAsync(Limit);
        Assert.True(run.Job.HasBeenReady);
        await run.Job.CompleteAsync();
        var result = await run.Job.WaitAsync(Limit);

        Assert.True(result.Completed);
        Assert.False(result.Cancelled);
        Assert.Equal(LabJobKind.Mirror, result.Kind);
        Assert.Equal(ExpectedDisk, result.Disk);
        Assert.Equal(result, await run.Job.Completion);
    }

    [Fact]
    public async Task Given_a_ready_mirror_When_it_is_cancelled_Then_the_result_says_cancelled_not_completed()
    {
        await using var run = await StartMirrorAsync();
        await run.BecomeReadyAsync();

        await run.Job.WaitForReadyAsync(Limit);
        await run.Job.CancelAsync();
        var result = await run.Job.WaitAsync(Limit);

        Assert.True(result.Cancelled);
        Assert.False(result.Completed);
        Assert.Equal(LabJobKind.Mirror, run.Job.Kind);
        Assert.Equal(ExpectedDisk, run.Job.Disk);
    }

    [Fact]
    public async Task Given_a_mirror_that_never_becomes_ready_When_waiting_for_ready_Then_a_LabTimeoutException_names_the_job_and_ready()
    {
        await using var run = await StartMirrorAsync();

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => run.Job.WaitForReadyAsync(TimeSpan.FromMilliseconds(100)));

        Assert.Contains("to become ready", e.Awaited, StringComparison.Ordinal);
        Assert.Contains(run.Job.Id, e.Awaited, StringComparison.Ordinal);
        Assert.Contains(run.Job.Type, e.Awaited, StringComparison.Ordinal);
        Assert.False(run.Job.HasBeenReady);
    }

    [Fact]
    public async Task Given_a_mirror_that_never_ends_When_waiting_for_its_end_Then_a_LabTimeoutException_names_the_job_and_its_end()
    {
        await using var run = await StartMirrorAsync();

        var e = await Assert.ThrowsAsync<LabTimeoutException>(() => run.Job.WaitAsync(TimeSpan.FromMilliseconds(100)));

        Assert.EndsWith("to end", e.Awaited, StringComparison.Ordinal);
        Assert.Contains(run.Job.Id, e.Awaited, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Given_a_job_that_ends_before_ready_When_waiting_for_ready_Then_the_wait_fails_saying_so_and_not_as_a_timeout()
    {
        await using var run = await StartMirrorAsync();
        await run.EndWithoutReadyAsync();

        var e = await Assert.ThrowsAsync<LabException>(() => run.Job.WaitForReadyAsync(Limit));

        Assert.IsNotType<LabTimeoutException>(e);
        Assert.Contains("without becoming ready", e.Message, StringComparison.Ordinal);
        Assert.True(run.Job.Completion.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Given_a_watch_of_a_mirror_When_it_becomes_ready_and_is_completed_Then_the_watch_sees_ready_and_ends_with_the_job()
    {
        await using var run = await StartMirrorAsync();
        var seen = new List<BlockJobProgress>();
        // Subscribed once the first item (the last known progress) is read: later events are not missed.
        var watching = run.Job.WatchAsync().GetAsyncEnumerator();
        Assert.True(await watching.MoveNextAsync());
        seen.Add(watching.Current);
        var watch = Task.Run(async () =>
        {
            while (await watching.MoveNextAsync())
            {
                seen.Add(watching.Current);
            }
            await watching.DisposeAsync();
        });

        await run.BecomeReadyAsync();
        await run.Job.WaitForReadyAsync(Limit);
        await run.Job.CompleteAsync();
        await run.Job.WaitAsync(Limit);
        await watch.WaitAsync(Limit);

        Assert.Contains(seen, p => p.Status == JobStatus.Ready);
        Assert.Equal(run.Job.Id, seen[^1].JobId);
    }
}

/// <summary>The contract on QEMU: <see cref="BlockJob"/> over a scripted QMP peer.</summary>
public sealed class QmpLabJobContractTests : LabJobContractTests
{
    protected override string ExpectedDisk => "disk0";

    protected override async Task<IRunningMirror> StartMirrorAsync()
    {
        const string id = "m9";
        var peer = await ScriptedQmpPeer.StartAsync(async (p, cmd, _) =>
        {
            switch (cmd)
            {
                case "job-complete":
                case "block-job-cancel":
                    p.AfterReply = () => ConcludeAsync(p, id);
                    return new JsonObject();
                case "query-jobs":
                    return new JsonArray(new JsonObject { ["id"] = id, ["type"] = "mirror", ["status"] = "concluded", ["current-progress"] = 100L, ["total-progress"] = 100L });
                case "query-block-jobs":
                    return new JsonArray();
                default:
                    await Task.CompletedTask;
                    return new JsonObject();
            }
        });
        var job = await BlockJob.StartAsync(peer.Client, id, "mirror", "drive-mirror", new JsonObject { ["job-id"] = id },
            new BlockJobOptions { SampleOnEvents = false, Disk = "disk0", Kind = LabJobKind.Mirror });
        await peer.StatusAsync(id, "created", "running");
        return new Run(peer, job, id);
    }

    private static async Task ConcludeAsync(ScriptedQmpPeer p, string id)
    {
        await p.StatusAsync(id, "waiting", "pending");
        await p.EmitAsync("BLOCK_JOB_COMPLETED", new { type = "mirror", device = id, len = 100L, offset = 100L, speed = 0 });
        await p.StatusAsync(id, "concluded");
    }

    private sealed class Run(ScriptedQmpPeer peer, BlockJob job, string id) : IRunningMirror
    {
        public ILabJob Job => job;

        public async Task BecomeReadyAsync()
        {
            await peer.EmitAsync("BLOCK_JOB_READY", new { type = "mirror", device = id, len = 100L, offset = 100L, speed = 0 });
            await peer.StatusAsync(id, "ready");
        }

        public Task EndWithoutReadyAsync() => ConcludeAsync(peer, id);

        public async ValueTask DisposeAsync()
        {
            await job.DisposeAsync();
            await peer.DisposeAsync();
        }
    }
}

/// <summary>The contract on libvirt: <see cref="LibvirtBlockJob"/> over a stand-in that answers as libvirt does.</summary>
public sealed class LibvirtLabJobContractTests : LabJobContractTests
{
    protected override string ExpectedDisk => "vda";

    protected override Task<IRunningMirror> StartMirrorAsync()
    {
        var host = new StandInLibvirt("dom");
        var job = new LibvirtBlockJob(host, "vda", "copy");
        return Task.FromResult<IRunningMirror>(new Run(host, job));
    }

    private sealed class Run(StandInLibvirt host, LibvirtBlockJob job) : IRunningMirror
    {
        public ILabJob Job => job;

        public Task BecomeReadyAsync()
        {
            host.JobInfo = (100, 100);
            host.Emit(LibvirtBlockJobStatus.Ready);
            return Task.CompletedTask;
        }

        public Task EndWithoutReadyAsync()
        {
            host.JobInfo = null;
            host.Emit(LibvirtBlockJobStatus.Completed);
            return Task.CompletedTask;
        }

        public ValueTask DisposeAsync() => job.DisposeAsync();
    }
}

/// <summary>
/// A stand-in for libvirt under one <see cref="LibvirtBlockJob"/>: events are handed to the job as libvirt's event
/// loop does, <c>virDomainGetBlockJobInfo</c> answers <see cref="JobInfo"/>, and <c>virDomainBlockJobAbort</c>
/// returns once the job is gone, its COMPLETED (pivot) or CANCELLED (abort) event sent first.
/// </summary>
internal sealed class StandInLibvirt(string name) : ILibvirtJobHost
{
    private readonly List<Action<LibvirtDomainEvent>> _listeners = [];

    public string Name => name;

    public TimeProvider Time => TimeProvider.System;

    /// <summary>What <c>virDomainGetBlockJobInfo</c> answers; null once libvirt has no job on the disk.</summary>
    public (long Cur, long End)? JobInfo { get; set; } = (0, 100);

    /// <summary>The aborts asked, true for a pivot.</summary>
    public List<bool> Aborts { get; } = [];

    public IDisposable Subscribe(Action<LibvirtDomainEvent> listener)
    {
        lock (_listeners)
        {
            _listeners.Add(listener);
        }
        return new Unsubscribe(() =>
        {
            lock (_listeners)
            {
                _listeners.Remove(listener);
            }
        });
    }

    public Task ReconnectAsync() => Task.CompletedTask;

    public (long Cur, long End)? GetJobInfo(string disk) => JobInfo;

    public Task AbortJobAsync(string disk, bool pivot, CancellationToken cancellationToken)
    {
        Aborts.Add(pivot);
        JobInfo = null;
        Emit(pivot ? LibvirtBlockJobStatus.Completed : LibvirtBlockJobStatus.Cancelled, disk);
        return Task.CompletedTask;
    }

    public void Emit(LibvirtBlockJobStatus status, string disk = "vda")
    {
        Action<LibvirtDomainEvent>[] listeners;
        lock (_listeners)
        {
            listeners = [.. _listeners];
        }
        var e = new BlockJobEventRecord(name, DateTimeOffset.UtcNow, disk, LibvirtBlockJobType.Copy, status);
        foreach (var l in listeners)
        {
            l(e);
        }
    }

    private sealed class Unsubscribe(Action action) : IDisposable
    {
        public void Dispose() => action();
    }
}
