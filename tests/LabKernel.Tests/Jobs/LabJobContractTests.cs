using System.Runtime.CompilerServices;
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

        /// <summary>The backend reports the job failed (QEMU: concluded with an error; libvirt: FAILED).</summary>
        Task FailAsync();
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
    public async Task Given_a_mirror_the_backend_reports_failed_When_waiting_for_ready_or_its_end_Then_both_waits_throw_BlockJobFailedException_naming_the_job()
    {
        await using var run = await StartMirrorAsync();
        await run.FailAsync();

        var atReady = await Assert.ThrowsAsync<BlockJobFailedException>(() => run.Job.WaitForReadyAsync(Limit));
        var atEnd = await Assert.ThrowsAsync<BlockJobFailedException>(() => run.Job.WaitAsync(Limit));

        Assert.Same(atReady, atEnd);
        Assert.Equal((run.Job.Id, run.Job.Type), (atEnd.JobId, atEnd.Type));
        Assert.Contains(run.Job.Id, atEnd.Message, StringComparison.Ordinal);
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
        var failed = new StrongBox<bool>();
        var peer = await ScriptedQmpPeer.StartAsync(async (p, cmd, _) =>
        {
            switch (cmd)
            {
                case "job-complete":
                case "block-job-cancel":
                    p.AfterReply = () => ConcludeAsync(p, id);
                    return new JsonObject();
                case "query-jobs":
                    var job = new JsonObject { ["id"] = id, ["type"] = "mirror", ["status"] = "concluded", ["current-progress"] = 100L, ["total-progress"] = 100L };
                    if (failed.Value)
                    {
                        job["error"] = "Input/output error";
                    }
                    return new JsonArray(job);
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
        return new Run(peer, job, id, failed);
    }

    private static async Task ConcludeAsync(ScriptedQmpPeer p, string id)
    {
        await p.StatusAsync(id, "waiting", "pending");
        await p.EmitAsync("BLOCK_JOB_COMPLETED", new { type = "mirror", device = id, len = 100L, offset = 100L, speed = 0 });
        await p.StatusAsync(id, "concluded");
    }

    private sealed class Run(ScriptedQmpPeer peer, BlockJob job, string id, StrongBox<bool> failed) : IRunningMirror
    {
        public ILabJob Job => job;

        public async Task BecomeReadyAsync()
        {
            await peer.EmitAsync("BLOCK_JOB_READY", new { type = "mirror", device = id, len = 100L, offset = 100L, speed = 0 });
            await peer.StatusAsync(id, "ready");
        }

        public Task EndWithoutReadyAsync() => ConcludeAsync(peer, id);

        public async Task FailAsync()
        {
            failed.Value = true;
            await peer.EmitAsync("BLOCK_JOB_ERROR", new { device = id, operation = "write", action = "report" });
            await peer.StatusAsync(id, "aborting", "concluded");
        }

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

        public Task FailAsync()
        {
            host.JobInfo = null;
            host.Emit(LibvirtBlockJobStatus.Failed);
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

    public (long Cur, long End)? GetJobInfo(string disk) => JobInfo;

    public Task AbortJobAsync(string disk, bool pivot, CancellationToken cancellationToken)
    {
        Aborts.Add(pivot);
        JobInfo = null;
        Emit(pivot ? LibvirtBlockJobStatus.Completed : LibvirtBlockJobStatus.Cancelled, disk);
        return Task.CompletedTask;
    }

    /// <summary>How many times the job opened the connection again.</summary>
    public int Reconnects { get; private set; }

    public Task ReconnectAsync()
    {
        Reconnects++;
        return Task.CompletedTask;
    }

    /// <summary>A <c>BLOCK_JOB_2</c> event of the disk's copy job.</summary>
    public void Emit(LibvirtBlockJobStatus status, string disk = "vda") =>
        Send(new BlockJobEventRecord(name, DateTimeOffset.UtcNow, disk, LibvirtBlockJobType.Copy, status));

    /// <summary>Hands <paramref name="e"/> to every listener, as the connection's event loop does.</summary>
    public void Send(LibvirtDomainEvent e)
    {
        Action<LibvirtDomainEvent>[] listeners;
        lock (_listeners)
        {
            listeners = [.. _listeners];
        }
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
