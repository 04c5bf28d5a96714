using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using LabKernel.Qmp;

using LabKernel.Host;

namespace LabKernel.Jobs;

/// <summary>
/// A QEMU job (block-commit, block-stream, blockdev-mirror, snapshot-save, ...) started with <c>auto-dismiss</c>
/// off and driven by its events, the way qemu-iotests' <c>run_job</c> does: <c>JOB_STATUS_CHANGE</c> ready →
/// complete or cancel as asked, pending → <c>job-finalize</c> (auto-finalize off), concluded → read the error
/// from <c>query-jobs</c>, then <c>job-dismiss</c>. <c>BLOCK_JOB_*</c> events update offset/length and the error
/// list. Nothing here waits on a fixed sleep: every wait is for an event. The QEMU backend's <see cref="ILabJob"/>.
/// </summary>
public sealed class BlockJob : ILabJob
{
    private readonly QmpClient _qmp;
    private readonly QmpEventListener _listener;
    private readonly BlockJobOptions _options;
    private readonly TimeProvider _time;
    private readonly long _started;
    private readonly TaskCompletionSource<bool> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<BlockJobResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<Channel<BlockJobProgress>> _watchers = [];
    private readonly List<(Func<JobStatus, bool> Predicate, TaskCompletionSource<JobStatus> Tcs)> _statusWaiters = [];
    private readonly List<BlockJobError> _errors = [];
    private readonly object _gate = new();
    private Task _pump = Task.CompletedTask;
    private string? _eventError;
    private bool _cancelledEvent;
    private bool _cancelRequested;
    private bool _completeRequested;
    private BlockJobProgress _last;
    private int _concluding;
    private static long _ids;

    private BlockJob(QmpClient qmp, QmpEventListener listener, string id, string type, BlockJobOptions options, TimeProvider time)
    {
        _qmp = qmp;
        _listener = listener;
        Id = id;
        Type = type;
        _options = options;
        _time = time;
        _started = Stopwatch.GetTimestamp();
        _last = new BlockJobProgress(id, JobStatus.Created, 0, 0, time.GetUtcNow(), null, "start");
        _ = _ready.Task.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    /// <summary>The job id (<c>job-id</c>; block job events carry it as <c>device</c>).</summary>
    public string Id { get; }

    /// <summary>commit, stream, mirror, snapshot-save, ...</summary>
    public string Type { get; }

    /// <summary>What the job does: <see cref="BlockJobOptions.Kind"/>, else read from <see cref="Type"/>.</summary>
    public LabJobKind Kind => _options.Kind ?? LabJobKinds.Of(Type);

    /// <summary>The disk the job works on (<see cref="BlockJobOptions.Disk"/>), null for a job not on one disk.</summary>
    public string? Disk => _options.Disk;

    /// <summary>The last state <c>JOB_STATUS_CHANGE</c> reported.</summary>
    public JobStatus Status => Last.Status;

    /// <summary>The last progress known (from an event or a sample).</summary>
    public BlockJobProgress Last
    {
        get
        {
            lock (_gate)
            {
                return _last;
            }
        }
    }

    /// <summary>Paused by the caller or by an error policy (standby is a paused READY job).</summary>
    public bool IsPaused => Status is JobStatus.Paused or JobStatus.Standby;

    /// <summary>True once the job reached READY (mirror, active commit).</summary>
    public bool HasBeenReady => _ready.Task.IsCompletedSuccessfully && _ready.Task.Result;

    /// <summary>BLOCK_JOB_ERROR events seen so far.</summary>
    public IReadOnlyList<BlockJobError> Errors
    {
        get
        {
            lock (_gate)
            {
                return _errors.ToArray();
            }
        }
    }

    /// <summary>Completes when the job concluded and was dismissed; faults with <see cref="BlockJobFailedException"/> when QEMU reported an error.</summary>
    public Task<BlockJobResult> Completion => _completion.Task;

    /// <summary>A job id unique in this process: <paramref name="prefix"/> and a number (<c>commit-3</c>).</summary>
    public static string NewId(string prefix) =>
        prefix + Interlocked.Increment(ref _ids).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Starts a job: registers the event listener first, then sends <paramref name="command"/> (whose arguments
    /// must carry <c>job-id</c> = <paramref name="id"/> and, for block jobs, <c>auto-dismiss: false</c>).
    /// </summary>
    public static async Task<BlockJob> StartAsync(
        QmpClient qmp,
        string id,
        string type,
        string command,
        JsonObject arguments,
        BlockJobOptions? options = null,
        TimeProvider? time = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(qmp);
        var listener = qmp.Listen(e => IsFor(e, id));
        var job = new BlockJob(qmp, listener, id, type, options ?? new BlockJobOptions(), time ?? TimeProvider.System);
        try
        {
            await qmp.ExecuteAsync(command, arguments, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        job._pump = Task.Run(job.PumpAsync, CancellationToken.None);
        return job;
    }

    internal static bool IsFor(QmpEvent e, string id) => e.Name switch
    {
        "JOB_STATUS_CHANGE" or "BLOCK_JOB_PENDING" => e.GetString("id") == id,
        "BLOCK_JOB_READY" or "BLOCK_JOB_COMPLETED" or "BLOCK_JOB_CANCELLED" or "BLOCK_JOB_ERROR" => e.GetString("device") == id,
        _ => false,
    };

    /// <summary>
    /// Waits for READY; fails if the job concludes first (with its error, or a <see cref="LabException"/> saying it
    /// concluded without becoming ready) or the limit passes (<see cref="LabTimeoutException"/>, "... to become ready").
    /// </summary>
    public async Task WaitForReadyAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var ready = await Bounded(_ready.Task, timeout, $"{Type} job {Id} to become ready", cancellationToken).ConfigureAwait(false);
        if (!ready)
        {
            await Completion.ConfigureAwait(false);
            throw new LabException($"{Type} job {Id} concluded without becoming ready");
        }
    }

    /// <summary>
    /// Waits for the job to conclude (and be dismissed); throws <see cref="BlockJobFailedException"/> on QEMU's error
    /// and <see cref="LabTimeoutException"/> ("... to end") when the limit passes.
    /// </summary>
    public Task<BlockJobResult> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        Bounded(Completion, timeout, $"{Type} job {Id} to end", cancellationToken);

    /// <summary>Waits until the job's state satisfies <paramref name="predicate"/> (checked against the current state first).</summary>
    public async Task<JobStatus> WaitForStatusAsync(Func<JobStatus, bool> predicate, TimeSpan timeout, string awaited, CancellationToken cancellationToken = default)
    {
        var tcs = new TaskCompletionSource<JobStatus>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (predicate(_last.Status))
            {
                return _last.Status;
            }
            if (_completion.Task.IsCompleted)
            {
                throw new LabException($"{Type} job {Id} already concluded; it will not reach {awaited}");
            }
            _statusWaiters.Add((predicate, tcs));
        }
        return await Bounded(tcs.Task, timeout, $"{Type} job {Id} to reach {awaited}", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Pivots a READY job: <c>job-complete</c>. The completion follows on the job's events.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken = default)
    {
        _completeRequested = true;
        await _qmp.ExecuteAsync("job-complete", QmpJson.Args(new JobIdArguments(Id)), cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Cancels: <c>block-job-cancel</c>, as the documents' <c>block_job_cancel</c>. A READY mirror or active commit
    /// first copies what the guest wrote since (QEMU drains and flushes), then concludes without pivoting, so the
    /// target is in sync with the source at the moment of the cancel; an unfinished job stops where it is. With
    /// <paramref name="force"/> a READY job is abandoned at once and the target may miss the latest writes (this is
    /// what <c>job-cancel</c> does; the lab used it before and lost a mirror's last block now and then).
    /// </summary>
    public async Task CancelAsync(bool force = false, CancellationToken cancellationToken = default)
    {
        _cancelRequested = true;
        await _qmp.ExecuteAsync("block-job-cancel", QmpJson.Args(new BlockJobCancelArguments(Id, force)), cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary><see cref="CancelAsync(bool, CancellationToken)"/> without force: a READY job ends in sync.</summary>
    Task ILabJob.CancelAsync(CancellationToken cancellationToken) => CancelAsync(force: false, cancellationToken);

    /// <summary><c>job-pause</c>, then waits for the paused (or standby) state.</summary>
    public async Task PauseAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        await _qmp.ExecuteAsync("job-pause", QmpJson.Args(new JobIdArguments(Id)), cancellationToken: cancellationToken).ConfigureAwait(false);
        await WaitForStatusAsync(s => s is JobStatus.Paused or JobStatus.Standby, timeout ?? TimeSpan.FromSeconds(30), "paused", cancellationToken).ConfigureAwait(false);
    }

    /// <summary><c>job-resume</c> (also resumes a job an error policy stopped), then waits until it runs again.</summary>
    public async Task ResumeAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        await _qmp.ExecuteAsync("job-resume", QmpJson.Args(new JobIdArguments(Id)), cancellationToken: cancellationToken).ConfigureAwait(false);
        await WaitForStatusAsync(s => s is not (JobStatus.Paused or JobStatus.Standby), timeout ?? TimeSpan.FromSeconds(30), "running", cancellationToken).ConfigureAwait(false);
    }

    /// <summary><c>block-job-set-speed</c>: bytes per second, 0 for unlimited.</summary>
    public Task SetSpeedAsync(long bytesPerSecond, CancellationToken cancellationToken = default) =>
        _qmp.ExecuteAsync("block-job-set-speed", QmpJson.Args(new BlockJobSetSpeedArguments(Id, bytesPerSecond)), cancellationToken: cancellationToken);

    /// <summary>
    /// Samples progress now: <c>query-jobs</c> (state, current/total progress) and <c>query-block-jobs</c>
    /// (offset, len, io-status). Returns the last known progress when QEMU no longer lists the job.
    /// </summary>
    public async Task<BlockJobProgress> SampleAsync(CancellationToken cancellationToken = default) =>
        await SampleCoreAsync("sample", cancellationToken).ConfigureAwait(false) ?? Last;

    /// <summary>
    /// Progress updates: one sample per job event (status change, READY, error, completion), ending when the job
    /// concludes. Subscribe before the events you care about; earlier ones are not replayed.
    /// </summary>
    public async IAsyncEnumerable<BlockJobProgress> WatchAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var channel = Channel.CreateUnbounded<BlockJobProgress>();
        lock (_gate)
        {
            if (_completion.Task.IsCompleted)
            {
                channel.Writer.TryComplete();
            }
            else
            {
                _watchers.Add(channel);
            }
        }
        channel.Writer.TryWrite(Last);
        await foreach (var p in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return p;
        }
    }

    /// <summary>
    /// A measurement for plots: samples every <paramref name="interval"/> (chosen by the caller) until the job
    /// concludes. This is not how the job is driven; it only observes.
    /// </summary>
    public async IAsyncEnumerable<BlockJobProgress> SampleEveryAsync(TimeSpan interval, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var timer = new PeriodicTimer(interval, _time);
        while (!Completion.IsCompleted)
        {
            var s = await SampleCoreAsync("sample", cancellationToken).ConfigureAwait(false);
            if (s is null)
            {
                break;
            }
            yield return s;
            var tick = timer.WaitForNextTickAsync(cancellationToken).AsTask();
            await Task.WhenAny(tick, Completion).ConfigureAwait(false);
        }
        yield return Last;
    }

    private async Task<BlockJobProgress?> SampleCoreAsync(string trigger, CancellationToken cancellationToken)
    {
        JsonNode? jobs;
        JsonNode? blockJobs;
        try
        {
            jobs = await _qmp.ExecuteAsync("query-jobs", cancellationToken: cancellationToken).ConfigureAwait(false);
            blockJobs = await _qmp.ExecuteAsync("query-block-jobs", cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (QmpDisconnectedException)
        {
            return null;
        }
        var job = (jobs as JsonArray)?.OfType<JsonObject>().FirstOrDefault(j => j["id"]?.GetValue<string>() == Id);
        if (job is null)
        {
            return null;
        }
        var block = (blockJobs as JsonArray)?.OfType<JsonObject>().FirstOrDefault(j => j["device"]?.GetValue<string>() == Id);
        var offset = block?["offset"]?.GetValue<long>() ?? job["current-progress"]?.GetValue<long>() ?? 0;
        var length = block?["len"]?.GetValue<long>() ?? job["total-progress"]?.GetValue<long>() ?? 0;
        var status = JobStatusText.Parse(job["status"]?.GetValue<string>());
        var io = block?["io-status"]?.GetValue<string>();
        var p = new BlockJobProgress(Id, status, offset, length, _time.GetUtcNow(), io, trigger);
        lock (_gate)
        {
            // Keep the status the events reported: a sample may race a status change.
            _last = p with { Status = _last.Status };
            return _last;
        }
    }

    private async Task PumpAsync()
    {
        try
        {
            await foreach (var e in _listener.ReadAllAsync().ConfigureAwait(false))
            {
                if (await HandleAsync(e).ConfigureAwait(false))
                {
                    return;
                }
            }
            Fail(Interrupted(new QmpDisconnectedException("QEMU closed the QMP connection")));
        }
        catch (Exception ex) when (ex is LabException or System.Threading.Channels.ChannelClosedException)
        {
            Fail(Interrupted(ex as LabException ?? new QmpDisconnectedException("QEMU closed the QMP connection", ex)));
        }
        finally
        {
            _listener.Dispose();
        }
    }

    /// <summary>Handles one event; true when the job is over.</summary>
    private async Task<bool> HandleAsync(QmpEvent e)
    {
        switch (e.Name)
        {
            case "JOB_STATUS_CHANGE":
                var status = JobStatusText.Parse(e.GetString("status"));
                SetStatus(status, e.Name);
                switch (status)
                {
                    case JobStatus.Ready:
                        _ready.TrySetResult(true);
                        if (_options.OnReady == ReadyAction.Complete && !_cancelRequested && !_completeRequested)
                        {
                            await CompleteAsync().ConfigureAwait(false);
                        }
                        else if (_options.OnReady == ReadyAction.Cancel && !_cancelRequested && !_completeRequested)
                        {
                            await CancelAsync().ConfigureAwait(false);
                        }
                        break;
                    case JobStatus.Pending when !_options.AutoFinalize && _options.FinalizeWhenPending:
                        await _qmp.ExecuteAsync("job-finalize", QmpJson.Args(new JobIdArguments(Id))).ConfigureAwait(false);
                        break;
                    case JobStatus.Concluded:
                        await ConcludeAsync().ConfigureAwait(false);
                        return true;
                }
                if (_options.SampleOnEvents && status is JobStatus.Running or JobStatus.Ready or JobStatus.Paused or JobStatus.Standby)
                {
                    await SampleAndPublishAsync(e.Name).ConfigureAwait(false);
                }
                break;
            case "BLOCK_JOB_READY":
            case "BLOCK_JOB_COMPLETED":
            case "BLOCK_JOB_CANCELLED":
                if (e.Name == "BLOCK_JOB_CANCELLED")
                {
                    _cancelledEvent = true;
                }
                if (e.GetString("error") is { } err)
                {
                    _eventError = err;
                }
                UpdateOffsets(e);
                break;
            case "BLOCK_JOB_ERROR":
                lock (_gate)
                {
                    _errors.Add(new BlockJobError(e.GetString("operation") ?? "?", e.GetString("action") ?? "?", e.Timestamp));
                }
                Publish(Last with { Trigger = e.Name, At = _time.GetUtcNow() });
                break;
        }
        return false;
    }

    private void UpdateOffsets(QmpEvent e)
    {
        var offset = e.Data["offset"]?.GetValue<long>();
        var length = e.Data["len"]?.GetValue<long>();
        BlockJobProgress p;
        lock (_gate)
        {
            _last = _last with { Offset = offset ?? _last.Offset, Length = length ?? _last.Length, At = _time.GetUtcNow(), Trigger = e.Name };
            p = _last;
        }
        Publish(p);
    }

    private void SetStatus(JobStatus status, string trigger)
    {
        List<TaskCompletionSource<JobStatus>> wake = [];
        BlockJobProgress p;
        lock (_gate)
        {
            _last = _last with { Status = status, At = _time.GetUtcNow(), Trigger = trigger };
            p = _last;
            for (var i = _statusWaiters.Count - 1; i >= 0; i--)
            {
                if (_statusWaiters[i].Predicate(status))
                {
                    wake.Add(_statusWaiters[i].Tcs);
                    _statusWaiters.RemoveAt(i);
                }
            }
        }
        foreach (var t in wake)
        {
            t.TrySetResult(status);
        }
        if (!_options.SampleOnEvents)
        {
            Publish(p);
        }
    }

    private async Task SampleAndPublishAsync(string trigger)
    {
        var s = await SampleCoreAsync(trigger, CancellationToken.None).ConfigureAwait(false);
        if (s is not null)
        {
            Publish(s);
        }
    }

    private void Publish(BlockJobProgress p)
    {
        lock (_gate)
        {
            foreach (var w in _watchers)
            {
                w.Writer.TryWrite(p);
            }
        }
    }

    private async Task ConcludeAsync()
    {
        // The error lives in query-jobs until the job is dismissed; read it first.
        string? error = null;
        var jobs = await _qmp.ExecuteAsync("query-jobs").ConfigureAwait(false);
        if ((jobs as JsonArray)?.OfType<JsonObject>().FirstOrDefault(j => j["id"]?.GetValue<string>() == Id) is { } job)
        {
            error = job["error"]?.GetValue<string>();
            lock (_gate)
            {
                _last = _last with
                {
                    Offset = job["current-progress"]?.GetValue<long>() ?? _last.Offset,
                    Length = job["total-progress"]?.GetValue<long>() ?? _last.Length,
                };
            }
        }
        error ??= _eventError;
        await _qmp.ExecuteAsync("job-dismiss", QmpJson.Args(new JobIdArguments(Id))).ConfigureAwait(false);
        var cancelled = _cancelRequested || _cancelledEvent;
        BlockJobProgress last;
        lock (_gate)
        {
            _last = _last with { Status = JobStatus.Null, At = _time.GetUtcNow(), Trigger = "conclusion" };
            last = _last;
        }
        Publish(last);
        _ready.TrySetResult(false);
        if (error is not null && !(cancelled && IsCancellationError(error)))
        {
            Fail(new BlockJobFailedException(Id, Type, error, Errors));
            return;
        }
        var result = new BlockJobResult(Id, Type, cancelled, _completeRequested && !cancelled, last.Offset, last.Length, Stopwatch.GetElapsedTime(_started), Errors)
        {
            Kind = Kind,
            Disk = Disk,
        };
        Finish(() => _completion.TrySetResult(result));
    }

    private static bool IsCancellationError(string error) =>
        error.Contains("cancel", StringComparison.OrdinalIgnoreCase);

    /// <summary>A lost connection becomes the job's own error, naming it and how far it got.</summary>
    private LabException Interrupted(LabException cause) =>
        cause is QmpDisconnectedException ? new BlockJobInterruptedException(Id, Type, Last, cause) : cause;

    private void Fail(LabException error)
    {
        // The job's end first: a READY wait that fails sees Completion already faulted.
        Finish(() => _completion.TrySetException(error));
        _ready.TrySetException(error);
    }

    private void Finish(Action complete)
    {
        if (Interlocked.Exchange(ref _concluding, 1) == 0)
        {
            _options.Concluding?.Invoke();
        }
        // The end is recorded before anyone waiting is woken: a watch that ends or a status wait that fails sees
        // Completion done, and a watch or status wait that starts meanwhile sees it and does not register (registered
        // after the lists were emptied, it would never be woken).
        complete();
        List<TaskCompletionSource<JobStatus>> waiters;
        lock (_gate)
        {
            foreach (var w in _watchers)
            {
                w.Writer.TryComplete();
            }
            _watchers.Clear();
            waiters = _statusWaiters.Select(w => w.Tcs).ToList();
            _statusWaiters.Clear();
        }
        foreach (var w in waiters)
        {
            w.TrySetException(new LabException($"{Type} job {Id} concluded"));
        }
    }

    private Task<T> Bounded<T>(Task<T> task, TimeSpan timeout, string awaited, CancellationToken cancellationToken) =>
        Poll.ForAsync(task, awaited, timeout, () => Last.ToString(), time: _time, cancellationToken: cancellationToken);

    /// <summary>Stops listening. A job still running in QEMU is left alone (cancel it first if it must stop).</summary>
    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        await _pump.ConfigureAwait(false);
    }

    /// <summary>
    /// The arguments of the job commands that name a job by its id alone: <c>job-complete</c>, <c>job-pause</c>,
    /// <c>job-resume</c>, <c>job-finalize</c> and <c>job-dismiss</c>.
    /// </summary>
    private sealed record JobIdArguments(string Id);

    /// <summary>
    /// <c>block-job-cancel</c>'s arguments. The block-job commands still name a job <c>device</c>; for a job started
    /// with a <c>job-id</c> that is the id.
    /// </summary>
    private sealed record BlockJobCancelArguments(string Device, bool Force);

    /// <summary><c>block-job-set-speed</c>'s arguments: the job (as <c>device</c>) and its limit in bytes per second.</summary>
    private sealed record BlockJobSetSpeedArguments(string Device, long Speed);
}
