using System.Runtime.CompilerServices;
using System.Threading.Channels;
using LabKernel.Jobs;

using LabKernel.Host;

namespace LabKernel.Libvirt;

/// <summary>
/// A libvirt block job on one disk (commit, active commit, pull, copy), driven by libvirt's
/// <c>VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2</c> events: it listens before the job is started, so no READY or
/// COMPLETED is missed. Progress comes from <c>virDomainGetBlockJobInfo</c>, sampled on each event and on demand,
/// in the same <see cref="BlockJobProgress"/> record the QEMU backend's jobs report. libvirt names one job per disk,
/// so <see cref="BlockJobProgress.JobId"/> is the disk target. The libvirt backend's <see cref="ILabJob"/>; what only
/// libvirt has (its events, its final status, <see cref="PivotAsync"/> and <see cref="AbortAsync"/> by libvirt's
/// names) stays here.
/// </summary>
public sealed class LibvirtBlockJob : ILabJob
{
    private readonly ILibvirtJobHost _host;
    private readonly List<Channel<BlockJobProgress>> _watchers = [];
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<BlockJobResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<BlockJobProgress> _history = [];
    private readonly long _started;
    private readonly IDisposable _subscription;
    private BlockJobProgress _last;
    private bool _pivotRequested;
    private bool _abortRequested;
    // The lab's own synchronous pivot or abort, set before the call goes out: libvirt returns from it only once the
    // job is gone, so a job found gone after a reconnect while it is in flight ended by the lab's request.
    private TaskCompletionSource? _request;

    internal LibvirtBlockJob(LibvirtDomain domain, string disk, string type)
        : this(new DomainJobHost(domain), disk, type)
    {
    }

    /// <summary>A job on <paramref name="host"/> (tests pass a stand-in for libvirt).</summary>
    internal LibvirtBlockJob(ILibvirtJobHost host, string disk, string type)
    {
        _host = host;
        _started = host.Time.GetTimestamp();
        Disk = disk;
        Type = type;
        _last = new BlockJobProgress(disk, JobStatus.Created, 0, 0, host.Time.GetUtcNow(), null, "start");
        _subscription = host.Subscribe(OnEvent);
    }

    /// <summary>The disk target (<c>vda</c>).</summary>
    public string Disk { get; }

    string? ILabJob.Disk => Disk;

    /// <summary>libvirt names one job per disk: the id is the disk target.</summary>
    public string Id => Disk;

    /// <summary>commit, active-commit, pull or copy.</summary>
    public string Type { get; }

    /// <summary>What the job does, read from <see cref="Type"/>.</summary>
    public LabJobKind Kind => LabJobKinds.Of(Type);

    /// <summary>The last progress seen (event or sample).</summary>
    public BlockJobProgress Last
    {
        get
        {
            lock (_history)
            {
                return _last;
            }
        }
    }

    /// <summary>Every progress observation, oldest first.</summary>
    public IReadOnlyList<BlockJobProgress> History
    {
        get
        {
            lock (_history)
            {
                return _history.ToArray();
            }
        }
    }

    /// <summary>The BLOCK_JOB_2 events of this job, in order.</summary>
    public IReadOnlyList<BlockJobEventRecord> Events
    {
        get
        {
            lock (_history)
            {
                return _events.ToArray();
            }
        }
    }

    private readonly List<BlockJobEventRecord> _events = [];

    /// <summary>libvirt's final status: completed, failed or cancelled; null while it runs.</summary>
    public LibvirtBlockJobStatus? Outcome { get; private set; }

    public bool HasBeenReady => _ready.Task.IsCompletedSuccessfully;

    /// <summary>Completes when the job ends (faults with <see cref="BlockJobFailedException"/> when libvirt reports FAILED).</summary>
    public Task<BlockJobResult> Completion => _completion.Task;

    private void OnEvent(LibvirtDomainEvent e)
    {
        if (e is ConnectionClosedEventRecord && !_completion.Task.IsCompleted)
        {
            _ = RecoverAsync();
            return;
        }
        if (e is not BlockJobEventRecord b || b.Domain != _host.Name || b.Disk != Disk || _completion.Task.IsCompleted)
        {
            return;
        }
        lock (_history)
        {
            _events.Add(b);
        }
        if (b.Status == LibvirtBlockJobStatus.Ready)
        {
            TrySample("ready", JobStatus.Ready);
            _ready.TrySetResult();
            return;
        }
        var last = Last;
        Record(last with { Status = JobStatus.Concluded, At = b.At, Trigger = b.Status.ToString().ToLowerInvariant() });
        Outcome = b.Status;
        if (b.Status == LibvirtBlockJobStatus.Failed)
        {
            Fail(new BlockJobFailedException(Disk, Type, $"libvirt reported the {Type} job on {_host.Name} {Disk} FAILED", []));
        }
        else
        {
            var cancelled = b.Status == LibvirtBlockJobStatus.Cancelled || (_abortRequested && !_pivotRequested);
            // The job's end first: a READY wait that fails sees Completion already done (see Fail).
            _completion.TrySetResult(Result(cancelled, !cancelled && (_pivotRequested || b.Status == LibvirtBlockJobStatus.Completed), last, b.Status.ToString().ToLowerInvariant()));
            EndWatches();
            _ready.TrySetException(new LabException($"the {Type} job on {_host.Name} {Disk} ended ({b.Status}) without becoming ready"));
        }
        _ = _ready.Task.Exception; // observed: a job that never becomes ready is not an unobserved fault
    }

    /// <summary>
    /// libvirtd closed the connection (restarted): the job goes on in QEMU, and libvirtd takes it up again when it is
    /// back. The lab opens the connection again and, since events sent meanwhile are lost, asks for the job: still
    /// there, it is followed as before (a READY missed meanwhile is seen in the sample); gone, it ended while the lab
    /// was away, and the wait fails saying so, because how it ended cannot be known from libvirt any more.
    /// </summary>
    private async Task RecoverAsync()
    {
        try
        {
            await _host.ReconnectAsync().ConfigureAwait(false);
            if (BeforeRecoverySample is { } hook)
            {
                await hook().ConfigureAwait(false);
            }
            var sample = await Task.Run(() => Sample("reconnected", HasBeenReady ? JobStatus.Ready : JobStatus.Running)).ConfigureAwait(false);
            if (sample is null && Volatile.Read(ref _request) is { } request)
            {
                // Gone because the lab pivoted or aborted it (the call may still be returning): its COMPLETED or
                // CANCELLED event may come on the new connection, or have been sent before it was registered again,
                // so the request's own return decides, as it would without the restart.
                await ConcludeByRequestAsync(request.Task).ConfigureAwait(false);
                return;
            }
            if (sample is null)
            {
                Fail(new LabException($"the {Type} job on {_host.Name} {Disk} ended while libvirtd was away (it restarted); libvirt no longer lists it, so how it ended is unknown: check the disk's chain before going on"));
                return;
            }
            Record(sample);
            if (!HasBeenReady && sample.Length > 0 && sample.Offset == sample.Length && Type is "copy" or "active-commit")
            {
                _ready.TrySetResult();
            }
        }
        catch (LabException e)
        {
            Fail(new LabException($"libvirtd closed the connection during the {Type} job on {_host.Name} {Disk}: {e.Message}", e));
        }
    }

    private void Fail(LabException error)
    {
        // The job's end before the READY wait is woken: a caller that catches the failed wait and then disposes the
        // job must see it over, not abort a job libvirt no longer has.
        _completion.TrySetException(error);
        EndWatches();
        _ready.TrySetException(error);
        _ = _ready.Task.Exception;
    }

    private BlockJobResult Result(bool cancelled, bool completed, BlockJobProgress last, string backendStatus) =>
        new(Disk, Type, cancelled, completed, last.Offset, last.Length, _host.Time.GetElapsedTime(_started), []) { Kind = Kind, Disk = Disk, BackendStatus = backendStatus };

    /// <summary>Ends every <see cref="WatchAsync"/>; called once the job's end is recorded, so a watch starting later sees it and does not register.</summary>
    private void EndWatches()
    {
        lock (_history)
        {
            foreach (var w in _watchers)
            {
                w.Writer.TryComplete();
            }
            _watchers.Clear();
        }
    }

    private void TrySample(string trigger, JobStatus status)
    {
        try
        {
            var info = Sample(trigger, status);
            if (info is not null)
            {
                Record(info);
            }
        }
        catch (LibvirtException)
        {
        }
    }

    private void Record(BlockJobProgress p)
    {
        lock (_history)
        {
            _last = p;
            _history.Add(p);
            foreach (var w in _watchers)
            {
                w.Writer.TryWrite(p);
            }
        }
    }

    private BlockJobProgress? Sample(string trigger, JobStatus status) =>
        _host.GetJobInfo(Disk) is { } info
            ? new BlockJobProgress(Disk, status, info.Cur, info.End, _host.Time.GetUtcNow(), null, trigger)
            : null;

    /// <summary>
    /// Progress as libvirt reports it: the last known first, then each observation (a sample on READY, on demand or
    /// after a reconnect, and the end), ending when the job ends. Earlier ones are in <see cref="History"/>.
    /// </summary>
    public async IAsyncEnumerable<BlockJobProgress> WatchAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var channel = Channel.CreateUnbounded<BlockJobProgress>();
        lock (_history)
        {
            channel.Writer.TryWrite(_last);
            if (_completion.Task.IsCompleted)
            {
                channel.Writer.TryComplete();
            }
            else
            {
                _watchers.Add(channel);
            }
        }
        await foreach (var p in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return p;
        }
    }

    /// <summary><c>virDomainGetBlockJobInfo</c> now: offset and length; null when libvirt no longer has the job.</summary>
    public Task<BlockJobProgress?> SampleAsync(CancellationToken cancellationToken = default) =>
        Task.Run(() =>
        {
            var p = Sample("sample", HasBeenReady ? JobStatus.Ready : JobStatus.Running);
            if (p is not null)
            {
                Record(p);
            }
            return p;
        }, cancellationToken);

    /// <summary>
    /// Waits for the READY event (copy, active commit); a job that ends first fails the wait (FAILED with
    /// <see cref="BlockJobFailedException"/>, else a <see cref="LabException"/> saying it ended without becoming
    /// ready); past the limit, <see cref="LabTimeoutException"/> ("... to become ready").
    /// </summary>
    public Task WaitForReadyAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        Poll.ForAsync(_ready.Task, $"the {Type} job on {_host.Name} {Disk} to become ready", timeout, () => Last.ToString(), time: _host.Time, cancellationToken: cancellationToken);

    /// <summary>Waits for the job's end: COMPLETED, CANCELLED (a result) or FAILED (an exception); past the limit, <see cref="LabTimeoutException"/> ("... to end").</summary>
    public Task<BlockJobResult> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        Poll.ForAsync(_completion.Task, $"the {Type} job on {_host.Name} {Disk} to end", timeout, () => Last.ToString(), time: _host.Time, cancellationToken: cancellationToken);

    /// <summary><c>virDomainBlockJobAbort(PIVOT)</c>: switch the disk to the copy / the commit base (after READY).</summary>
    public Task PivotAsync(CancellationToken cancellationToken = default)
    {
        _pivotRequested = true;
        return RequestAsync(pivot: true, cancellationToken);
    }

    /// <summary>The synchronous <c>virDomainBlockJobAbort</c>, recorded so that a reconnect can tell the lab's end of the job from one it missed.</summary>
    private async Task RequestAsync(bool pivot, CancellationToken cancellationToken)
    {
        var request = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _request, request);
        try
        {
            await _host.AbortJobAsync(Disk, pivot, cancellationToken).ConfigureAwait(false);
            request.TrySetResult();
        }
        catch (Exception e)
        {
            request.TrySetException(e);
            _ = request.Task.Exception;
            throw;
        }
    }

    /// <summary>A test's hook, run after the reconnect and before the job is asked for (to order a pivot before it).</summary>
    internal Func<Task>? BeforeRecoverySample { get; set; }

    private async Task ConcludeByRequestAsync(Task request)
    {
        try
        {
            await request.ConfigureAwait(false);
        }
        catch (Exception e) when (e is LabException or OperationCanceledException)
        {
            Fail(new LabException($"the {Type} job on {_host.Name} {Disk} ended while libvirtd was away (it restarted), and the lab's {(_pivotRequested ? "pivot" : "abort")} of it failed: {e.Message}; check the disk's chain before going on", e));
            return;
        }
        if (_completion.Task.IsCompleted)
        {
            return; // the event came on the new connection first
        }
        var last = Last;
        var cancelled = _abortRequested && !_pivotRequested;
        Record(last with { Status = JobStatus.Concluded, At = _host.Time.GetUtcNow(), Trigger = cancelled ? "abort returned" : "pivot returned" });
        Outcome ??= cancelled ? LibvirtBlockJobStatus.Cancelled : LibvirtBlockJobStatus.Completed;
        _completion.TrySetResult(Result(cancelled, !cancelled, last, cancelled ? "abort returned" : "pivot returned"));
        EndWatches();
        _ready.TrySetException(new LabException($"the {Type} job on {_host.Name} {Disk} ended without becoming ready"));
        _ = _ready.Task.Exception;
    }

    /// <summary>Same as <see cref="PivotAsync"/>, named like the QEMU backend's job.</summary>
    public Task CompleteAsync(CancellationToken cancellationToken = default) => PivotAsync(cancellationToken);

    /// <summary><c>virDomainBlockJobAbort</c>: stop the job; after READY the disk stays on its source / keeps the overlay.</summary>
    public Task AbortAsync(CancellationToken cancellationToken = default)
    {
        _abortRequested = true;
        return RequestAsync(pivot: false, cancellationToken);
    }

    /// <summary>Same as <see cref="AbortAsync"/>, named like the QEMU backend's job.</summary>
    public Task CancelAsync(CancellationToken cancellationToken = default) => AbortAsync(cancellationToken);

    public override string ToString() => $"{Type} on {_host.Name} {Disk}: {Last}";

    /// <summary>Stops listening; aborts the job when it is still running.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_completion.Task.IsCompleted)
        {
            try
            {
                await AbortAsync().ConfigureAwait(false);
                await WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            }
            catch (LabException)
            {
            }
        }
        _subscription.Dispose();
    }
}

/// <summary>What a <see cref="LibvirtBlockJob"/> needs of its domain: libvirt itself, or a test's stand-in.</summary>
internal interface ILibvirtJobHost
{
    /// <summary>The domain's name, for messages.</summary>
    string Name { get; }

    /// <summary>The clock the job's waits and observations use.</summary>
    TimeProvider Time { get; }

    /// <summary>The connection's events, in order (<see cref="LibvirtConnection.Subscribe"/>).</summary>
    IDisposable Subscribe(Action<LibvirtDomainEvent> listener);

    /// <summary>Opens the connection again after libvirtd closed it (<see cref="LibvirtConnection.ReconnectAsync"/>).</summary>
    Task ReconnectAsync();

    /// <summary><c>virDomainGetBlockJobInfo</c> (synchronous): the disk's job's cur and end, null when libvirt has no job on it.</summary>
    (long Cur, long End)? GetJobInfo(string disk);

    /// <summary><c>virDomainBlockJobAbort</c> (synchronous), with PIVOT to switch to the copy / commit base.</summary>
    Task AbortJobAsync(string disk, bool pivot, CancellationToken cancellationToken);
}

/// <summary>The job's host on a real domain: its connection and libvirt's C API.</summary>
internal sealed class DomainJobHost(LibvirtDomain domain) : ILibvirtJobHost
{
    public string Name => domain.Name;

    public TimeProvider Time => domain.Connection.Time;

    public IDisposable Subscribe(Action<LibvirtDomainEvent> listener) => domain.Connection.Subscribe(listener);

    public Task ReconnectAsync() => domain.Connection.ReconnectAsync();

    public (long Cur, long End)? GetJobInfo(string disk)
    {
        LibvirtNative.BlockJobInfo info = default;
        var r = LibvirtRuntime.Call("virDomainGetBlockJobInfo", domain.What, $"virDomainGetBlockJobInfo({domain.Name}, {disk})",
            () => LibvirtNative.virDomainGetBlockJobInfo(domain.Handle, disk, out info, 0));
        return r == 0 ? null : ((long)info.Cur, (long)info.End);
    }

    public Task AbortJobAsync(string disk, bool pivot, CancellationToken cancellationToken) =>
        domain.Block.AbortJobAsync(disk, pivot, cancellationToken);
}
