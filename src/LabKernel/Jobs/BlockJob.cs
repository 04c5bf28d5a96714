using System.Text.Json.Nodes;
using LabKernel.Host;
using LabKernel.Qmp;

namespace LabKernel.Jobs;

/// <summary>
/// A QEMU job (block-commit, block-stream, blockdev-mirror, snapshot-save, ...) started with <c>auto-dismiss</c>
/// off and driven by its events, the way qemu-iotests' <c>run_job</c> does: <c>JOB_STATUS_CHANGE</c> ready →
/// complete or cancel as asked, pending → <c>job-finalize</c> (auto-finalize off), concluded → read the error
/// from <c>query-jobs</c>, then <c>job-dismiss</c>. <c>BLOCK_JOB_*</c> events update offset/length and the error
/// list. Nothing here waits on a fixed sleep: every wait is for an event, limited through <see cref="Poll"/> on the
/// job's clock. The QEMU backend's <see cref="ILabJob"/>.
/// </summary>
/// <remarks>
/// This type is the job's face; each concern behind it is one file: <see cref="JobEventPump"/> (the events, in order,
/// and what each one does), <see cref="JobState"/> (what is known and who waits on it), <see cref="JobCommands"/>
/// (the QMP commands that drive and read the job), <see cref="JobConclusion"/> (the end as a result or an error) and
/// <see cref="JobSampler"/> (samples of its progress).
/// </remarks>
public sealed class BlockJob : ILabJob
{
    private readonly QmpEventListener _listener;
    private readonly BlockJobOptions _options;
    private readonly TimeProvider _time;
    private readonly JobState _state;
    private readonly JobCommands _commands;
    private readonly JobEventPump _events;
    private Task _pump = Task.CompletedTask;
    private static long _ids;

    private BlockJob(QmpClient qmp, QmpEventListener listener, string id, string type, BlockJobOptions options, TimeProvider time)
    {
        _listener = listener;
        Id = id;
        Type = type;
        _options = options;
        _time = time;
        _state = new JobState(id, type, time, options.Concluding);
        _commands = new JobCommands(qmp, id);
        var conclusion = new JobConclusion(id, type, Kind, Disk, _commands, _state, time, time.GetTimestamp());
        _events = new JobEventPump(listener, options, _state, _commands, conclusion, SampleCoreAsync);
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
    public BlockJobProgress Last => _state.Last;

    /// <summary>Paused by the caller or by an error policy (standby is a paused READY job).</summary>
    public bool IsPaused => Status is JobStatus.Paused or JobStatus.Standby;

    /// <summary>True once the job reached READY (mirror, active commit).</summary>
    public bool HasBeenReady => _state.Ready.IsCompletedSuccessfully && _state.Ready.Result;

    /// <summary>BLOCK_JOB_ERROR events seen so far.</summary>
    public IReadOnlyList<BlockJobError> Errors => _state.Errors;

    /// <summary>Completes when the job concluded and was dismissed; faults with <see cref="BlockJobFailedException"/> when QEMU reported an error.</summary>
    public Task<BlockJobResult> Completion => _state.Completion;

    /// <summary>The clock the job's waits and samples run on.</summary>
    internal TimeProvider Time => _time;

    /// <summary>A job id unique in this process: <paramref name="prefix"/> and a number (<c>commit-3</c>).</summary>
    public static string NewId(string prefix) =>
        prefix + Interlocked.Increment(ref _ids).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Starts a job: registers the event listener first, then sends <paramref name="command"/> (whose arguments
    /// must carry <c>job-id</c> = <paramref name="id"/> and, for block jobs, <c>auto-dismiss: false</c>). Its waits
    /// and samples run on <paramref name="time"/>'s clock, by default the connection's (a machine's <see cref="Machines.MachineOptions.Time"/>).
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
        var job = new BlockJob(qmp, listener, id, type, options ?? new BlockJobOptions(), time ?? qmp.Time);
        try
        {
            await qmp.ExecuteAsync(command, arguments, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        job._pump = Task.Run(job._events.RunAsync, CancellationToken.None);
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
        var ready = await Bounded(_state.Ready, timeout, $"{Type} job {Id} to become ready", cancellationToken).ConfigureAwait(false);
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
    public Task<JobStatus> WaitForStatusAsync(Func<JobStatus, bool> predicate, TimeSpan timeout, string awaited, CancellationToken cancellationToken = default) =>
        AwaitStatusAsync(_state.WhenStatus(predicate, awaited), timeout, awaited, cancellationToken);

    /// <summary>
    /// Waits until the job's error policy has stopped it: a <c>BLOCK_JOB_ERROR</c> with action <c>stop</c> seen after the
    /// first <paramref name="afterErrors"/> errors, and the job paused (or standby, when it was READY). A job pauses
    /// briefly for a drain too (a <c>JOB_STATUS_CHANGE</c> to paused with no error), which is not this. Returns that
    /// error; <see cref="LabTimeoutException"/> at the limit (30 s unless given).
    /// </summary>
    public async Task<BlockJobError> WaitForErrorStopAsync(int afterErrors = 0, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        const string Awaited = "a stop by its error policy (BLOCK_JOB_ERROR action stop, then paused)";
        static bool Stopping(BlockJobError e) => e.Action == "stop";
        var stopped = _state.WhenStatus((s, errors) => s is JobStatus.Paused or JobStatus.Standby && errors.Skip(afterErrors).Any(Stopping), Awaited);
        await AwaitStatusAsync(stopped, timeout ?? TimeSpan.FromSeconds(30), Awaited, cancellationToken).ConfigureAwait(false);
        return Errors.Skip(afterErrors).Last(Stopping);
    }

    /// <summary>Awaits a status wait registered with the job's state, withdrawing it when the limit passes or the caller cancels.</summary>
    private async Task<JobStatus> AwaitStatusAsync(Task<JobStatus> reached, TimeSpan timeout, string awaited, CancellationToken cancellationToken)
    {
        try
        {
            return await Poll.ForAsync(reached, $"{Type} job {Id} to reach {awaited}", timeout, () => Last.ToString(), () => _state.Withdraw(reached), _time, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // Cancelled too: the wait's condition is not checked again at every status change and error until the end.
            if (!reached.IsCompleted)
            {
                _state.Withdraw(reached);
            }
        }
    }

    /// <summary>Pivots a READY job: <c>job-complete</c>. The completion follows on the job's events.</summary>
    public Task CompleteAsync(CancellationToken cancellationToken = default) => _commands.CompleteAsync(cancellationToken);

    /// <summary>
    /// Cancels: <c>block-job-cancel</c>, as the documents' <c>block_job_cancel</c>. A READY mirror or active commit
    /// first copies what the guest wrote since (QEMU drains and flushes), then concludes without pivoting, so the
    /// target is in sync with the source at the moment of the cancel; an unfinished job stops where it is. With
    /// <paramref name="force"/> a READY job is abandoned at once and the target may miss the latest writes (this is
    /// what <c>job-cancel</c> does; the lab used it before and lost a mirror's last block now and then).
    /// </summary>
    public Task CancelAsync(bool force = false, CancellationToken cancellationToken = default) => _commands.CancelAsync(force, cancellationToken);

    /// <summary><see cref="CancelAsync(bool, CancellationToken)"/> without force: a READY job ends in sync.</summary>
    Task ILabJob.CancelAsync(CancellationToken cancellationToken) => CancelAsync(force: false, cancellationToken);

    /// <summary><c>job-pause</c>, then waits for the paused (or standby) state.</summary>
    public async Task PauseAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        await _commands.PauseAsync(cancellationToken).ConfigureAwait(false);
        await WaitForStatusAsync(s => s is JobStatus.Paused or JobStatus.Standby, timeout ?? TimeSpan.FromSeconds(30), "paused", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// <c>job-resume</c> (also resumes a job an error policy stopped), then waits until it has run again. The wait starts
    /// before the command: a job whose target still fails runs and is paused again by its error policy before the
    /// command's answer is read, and that brief run is what is awaited.
    /// </summary>
    public async Task ResumeAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        const string Awaited = "running";
        var ran = _state.WhenStatus(s => s is not (JobStatus.Paused or JobStatus.Standby), Awaited);
        try
        {
            await _commands.ResumeAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            _state.Withdraw(ran);
            throw;
        }
        await AwaitStatusAsync(ran, timeout ?? TimeSpan.FromSeconds(30), Awaited, cancellationToken).ConfigureAwait(false);
    }

    /// <summary><c>block-job-set-speed</c>: bytes per second, 0 for unlimited.</summary>
    public Task SetSpeedAsync(long bytesPerSecond, CancellationToken cancellationToken = default) =>
        _commands.SetSpeedAsync(bytesPerSecond, cancellationToken);

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
    public IAsyncEnumerable<BlockJobProgress> WatchAsync(CancellationToken cancellationToken = default) =>
        _state.WatchAsync(cancellationToken);

    /// <summary>
    /// A measurement for plots: samples every <paramref name="interval"/> (chosen by the caller) until the job
    /// concludes. This is not how the job is driven; it only observes.
    /// </summary>
    public IAsyncEnumerable<BlockJobProgress> SampleEveryAsync(TimeSpan interval, CancellationToken cancellationToken = default) =>
        JobSampler.EveryAsync(ct => SampleCoreAsync("sample", ct), Completion, () => Last, interval, _time, cancellationToken);

    /// <summary>A sample read now and kept as the last progress (with the status the events reported); null when QEMU no longer lists the job.</summary>
    private async Task<BlockJobProgress?> SampleCoreAsync(string trigger, CancellationToken cancellationToken) =>
        await JobSampler.ReadAsync(_commands, Id, trigger, _time, cancellationToken).ConfigureAwait(false) is { } sample
            ? _state.KeepSample(sample)
            : null;

    private Task<T> Bounded<T>(Task<T> task, TimeSpan timeout, string awaited, CancellationToken cancellationToken) =>
        Poll.ForAsync(task, awaited, timeout, () => Last.ToString(), time: _time, cancellationToken: cancellationToken);

    /// <summary>Stops listening. A job still running in QEMU is left alone (cancel it first if it must stop).</summary>
    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        await _pump.ConfigureAwait(false);
    }
}
