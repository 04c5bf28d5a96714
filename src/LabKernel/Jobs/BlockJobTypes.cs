using System.Globalization;

namespace LabKernel.Jobs;

/// <summary>QEMU's job states (<c>JobStatus</c> in the QAPI schema), as <c>JOB_STATUS_CHANGE</c> reports them.</summary>
public enum JobStatus
{
    Undefined,
    Created,
    Running,
    Paused,
    Ready,
    Standby,
    Waiting,
    Pending,
    Aborting,
    Concluded,

    /// <summary>Dismissed: QEMU has forgotten the job.</summary>
    Null,
}

/// <summary>What the job does when it reaches READY (mirror and active commit only).</summary>
public enum ReadyAction
{
    /// <summary>Stay READY until the caller calls <see cref="ILabJob.CompleteAsync"/> or <see cref="ILabJob.CancelAsync"/>.</summary>
    Wait,

    /// <summary>Issue <c>job-complete</c> at once: pivot to the target (mirror) or to the base (active commit).</summary>
    Complete,

    /// <summary>Cancel at once (<c>block-job-cancel</c>, in sync first): keep the source (mirror) or the overlay (active commit).</summary>
    Cancel,
}

/// <summary>How a job is driven.</summary>
public sealed record BlockJobOptions
{
    /// <summary>
    /// QEMU's <c>auto-finalize</c>. When false the job stops in PENDING and the lab issues <c>job-finalize</c>
    /// itself on <c>JOB_STATUS_CHANGE pending</c> (unless <see cref="FinalizeWhenPending"/> is false).
    /// </summary>
    public bool AutoFinalize { get; init; } = true;

    /// <summary>Issue <c>job-finalize</c> when the job reaches PENDING with auto-finalize off.</summary>
    public bool FinalizeWhenPending { get; init; } = true;

    /// <summary>What to do on READY.</summary>
    public ReadyAction OnReady { get; init; } = ReadyAction.Wait;

    /// <summary>
    /// Sample <c>query-jobs</c>/<c>query-block-jobs</c> on every job event so <see cref="BlockJob.WatchAsync"/>
    /// reports the offset at that moment (one extra QMP round trip per event).
    /// </summary>
    public bool SampleOnEvents { get; init; } = true;

    /// <summary>
    /// Called on the job's event pump once the job has concluded (or can no longer be followed), before
    /// <see cref="BlockJob.Completion"/> completes: whoever awaits the job sees what this did. The block layer uses
    /// it to forget the chains the job changed. Keep it short; it must not throw.
    /// </summary>
    public Action? Concluding { get; init; }

    /// <summary>The disk the job works on (<see cref="ILabJob.Disk"/>); null for a job not on one disk.</summary>
    public string? Disk { get; init; }

    /// <summary>What the job does (<see cref="ILabJob.Kind"/>); null to read it from the job's type (QEMU names an active commit <c>commit</c> too, so the block layer says which).</summary>
    public LabJobKind? Kind { get; init; }
}

/// <summary>One observation of a job's progress.</summary>
/// <param name="JobId">The job's id.</param>
/// <param name="Status">The job's state when sampled.</param>
/// <param name="Offset">Work done, in QEMU's progress units (bytes for block jobs): <c>current-progress</c> / <c>offset</c>.</param>
/// <param name="Length">Total work estimate: <c>total-progress</c> / <c>len</c>. It may grow while the guest writes.</param>
/// <param name="At">When the sample was taken (host clock).</param>
/// <param name="IoStatus">Block jobs' <c>io-status</c>: ok, failed or nospace; null for non-block jobs.</param>
/// <param name="Trigger">What caused the sample: an event name, <c>sample</c> (on demand) or <c>conclusion</c>.</param>
public sealed record BlockJobProgress(string JobId, JobStatus Status, long Offset, long Length, DateTimeOffset At, string? IoStatus, string Trigger)
{
    /// <summary>Offset / Length, 0 when the length is not known yet.</summary>
    public double Fraction => Length <= 0 ? 0 : (double)Offset / Length;

    /// <summary>The job was READY (in sync, waiting to be completed or cancelled) when this was read.</summary>
    public bool IsReady => Status == JobStatus.Ready;

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{JobId} {Status.ToString().ToLowerInvariant()} {Offset}/{Length} ({Fraction:P1}) io={IoStatus ?? "-"} [{Trigger}]");
}

/// <summary>A <c>BLOCK_JOB_ERROR</c> event: the job hit an I/O error and applied its error policy.</summary>
/// <param name="Operation">read (source) or write (target).</param>
/// <param name="Action">ignore, report or stop: what QEMU did.</param>
/// <param name="At">QEMU's event timestamp.</param>
public sealed record BlockJobError(string Operation, string Action, DateTimeOffset At);

/// <summary>
/// How a job ended (on QEMU it is dismissed by then), the same record from both backends (<see cref="ILabJob"/>): QEMU
/// reports the <c>BLOCK_JOB_ERROR</c>s the job survived, libvirt its final status (<see cref="BackendStatus"/>).
/// </summary>
/// <param name="JobId">The job id (on libvirt the disk target).</param>
/// <param name="Type">The backend's job type: commit, stream, mirror, snapshot-save, ... (QEMU); commit, active-commit, pull, copy (libvirt).</param>
/// <param name="Cancelled">The caller cancelled it (for a READY mirror or active commit this keeps the source/overlay).</param>
/// <param name="Completed">The caller completed it after READY (the pivot happened).</param>
/// <param name="Offset">Final offset.</param>
/// <param name="Length">Final length.</param>
/// <param name="Elapsed">From the start command to the conclusion.</param>
/// <param name="Errors">The BLOCK_JOB_ERROR events seen (policy stop/ignore errors the job survived).</param>
public sealed record BlockJobResult(
    string JobId,
    string Type,
    bool Cancelled,
    bool Completed,
    long Offset,
    long Length,
    TimeSpan Elapsed,
    IReadOnlyList<BlockJobError> Errors)
{
    /// <summary>What the job did, the same word on both backends.</summary>
    public LabJobKind Kind { get; init; } = LabJobKinds.Of(Type);

    /// <summary>The disk the job worked on; null when not known (a job not on one disk).</summary>
    public string? Disk { get; init; }

    /// <summary>
    /// The backend's own word for the end, when it gives one: libvirt's final <c>BLOCK_JOB_2</c> status (completed,
    /// cancelled) or how the lab concluded it after a reconnect; null on QEMU, whose end is <c>JOB_STATUS_CHANGE</c>
    /// concluded.
    /// </summary>
    public string? BackendStatus { get; init; }
}

/// <summary>A job concluded with the error QEMU reported in <c>query-jobs</c> (or <c>BLOCK_JOB_COMPLETED</c>).</summary>
public sealed class BlockJobFailedException : LabException
{
    public BlockJobFailedException(string jobId, string type, string error, IReadOnlyList<BlockJobError> errors)
        : base($"{type} job {jobId} failed: {error}")
    {
        JobId = jobId;
        Type = type;
        Error = error;
        Errors = errors;
    }

    public string JobId { get; }
    public string Type { get; }

    /// <summary>QEMU's error text, e.g. <c>Input/output error</c>.</summary>
    public string Error { get; }

    public IReadOnlyList<BlockJobError> Errors { get; }
}

/// <summary>
/// The job's QEMU went away (killed, crashed, or its monitor closed) before the job concluded. QEMU writes no
/// backing-file header of a commit, stream or mirror until the job completes, so the chain on disk is the chain before
/// the job: check it with <c>qemu-img check</c> and run the same job again.
/// </summary>
public sealed class BlockJobInterruptedException : LabException
{
    public BlockJobInterruptedException(string jobId, string type, BlockJobProgress last, LabException cause)
        : base($"{type} job {jobId} interrupted at {last.Offset} of {last.Length} bytes: {cause.Message}", cause)
    {
        JobId = jobId;
        Type = type;
        LastProgress = last;
    }

    public string JobId { get; }
    public string Type { get; }

    /// <summary>The last progress the lab saw before the connection ended.</summary>
    public BlockJobProgress LastProgress { get; }
}

internal static class JobStatusText
{
    public static JobStatus Parse(string? s) => s switch
    {
        "created" => JobStatus.Created,
        "running" => JobStatus.Running,
        "paused" => JobStatus.Paused,
        "ready" => JobStatus.Ready,
        "standby" => JobStatus.Standby,
        "waiting" => JobStatus.Waiting,
        "pending" => JobStatus.Pending,
        "aborting" => JobStatus.Aborting,
        "concluded" => JobStatus.Concluded,
        "null" => JobStatus.Null,
        _ => JobStatus.Undefined,
    };
}
