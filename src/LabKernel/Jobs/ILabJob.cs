namespace LabKernel.Jobs;

/// <summary>What a block job does, the same word on both backends (QEMU's job type and libvirt's block job type map onto it).</summary>
public enum LabJobKind
{
    /// <summary>Not a chain job (e.g. QEMU's <c>snapshot-save</c>).</summary>
    Other,

    /// <summary>Commit of an intermediate layer: ends by itself.</summary>
    Commit,

    /// <summary>Commit of the active layer: goes READY, then pivots onto the base (complete) or keeps the overlay (cancel).</summary>
    ActiveCommit,

    /// <summary>Stream (libvirt's pull): data from the backing layers into the active layer; ends by itself.</summary>
    Stream,

    /// <summary>Mirror (libvirt's copy): goes READY, then pivots onto the target (complete) or leaves the source active (cancel).</summary>
    Mirror,

    /// <summary>Backup: a point-in-time copy; ends by itself.</summary>
    Backup,
}

/// <summary>
/// One block job, whichever backend runs it: QEMU over QMP (<see cref="BlockJob"/>, driven by
/// <c>JOB_STATUS_CHANGE</c>) or libvirt (<see cref="Libvirt.LibvirtBlockJob"/>, driven by <c>BLOCK_JOB_2</c>).
/// Both report progress as <see cref="BlockJobProgress"/> and end with one <see cref="BlockJobResult"/>, and both
/// mean the same by each step:
/// <list type="bullet">
/// <item><see cref="WaitForReadyAsync"/>: READY (mirror, active commit); a job that ends first fails the wait with its
/// own error, or a <see cref="LabException"/> saying it ended without becoming ready; the limit passing throws
/// <see cref="LabTimeoutException"/> naming the job and "to become ready".</item>
/// <item><see cref="CompleteAsync"/>: after READY, pivot (the disk moves onto the mirror's target / the commit's
/// base); the result says <see cref="BlockJobResult.Completed"/>.</item>
/// <item><see cref="CancelAsync"/>: before READY the job stops where it is; on a READY mirror or active commit it ends
/// without pivoting, the disk stays on its source (keeps its overlay) and a mirror's target holds what was copied; the
/// result says <see cref="BlockJobResult.Cancelled"/>. QEMU syncs the target first (<c>block-job-cancel</c>,
/// <c>force: false</c>); libvirt's <c>virDomainBlockJobAbort</c> is libvirt's to decide.</item>
/// <item><see cref="WaitAsync"/>: the end; a job the backend reports failed throws
/// <see cref="BlockJobFailedException"/>, one whose backend went away <see cref="BlockJobInterruptedException"/>
/// (QEMU) or a <see cref="LabException"/> saying so (libvirt); the limit passing throws
/// <see cref="LabTimeoutException"/> naming the job and "to end".</item>
/// </list>
/// What only one backend has stays on its type: QEMU's pause, resume, speed and status waits, libvirt's events and
/// final status. Disposing stops following the job; it differs by backend and is left so: QEMU's job is left running
/// (cancel it first if it must stop), libvirt's is aborted when still running.
/// </summary>
public interface ILabJob : IAsyncDisposable
{
    /// <summary>The job's id: QEMU's <c>job-id</c>; on libvirt, which names one job per disk, the disk target.</summary>
    string Id { get; }

    /// <summary>What the job does.</summary>
    LabJobKind Kind { get; }

    /// <summary>The backend's own name for the job type: QEMU's (commit, stream, mirror, backup, snapshot-save) or libvirt's (commit, active-commit, pull, copy).</summary>
    string Type { get; }

    /// <summary>The disk the job works on (QEMU: the disk's node name, <c>disk0</c>; libvirt: its target, <c>vda</c>); null for a job not on one disk.</summary>
    string? Disk { get; }

    /// <summary>The last progress known (from an event or a sample).</summary>
    BlockJobProgress Last { get; }

    /// <summary>True once the job reached READY.</summary>
    bool HasBeenReady { get; }

    /// <summary>The job's end: its result, or the failure <see cref="WaitAsync"/> throws.</summary>
    Task<BlockJobResult> Completion { get; }

    /// <summary>
    /// Progress as it happens: the last known progress first, then one per job event (status change, READY, error,
    /// the end), ending when the job ends. Earlier events are not replayed.
    /// </summary>
    IAsyncEnumerable<BlockJobProgress> WatchAsync(CancellationToken cancellationToken = default);

    /// <summary>Waits for READY (see the interface's remarks for what a job that ends first or a limit does).</summary>
    Task WaitForReadyAsync(TimeSpan timeout, CancellationToken cancellationToken = default);

    /// <summary>Waits for the job's end and returns how it ended.</summary>
    Task<BlockJobResult> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default);

    /// <summary>Pivots a READY job: QEMU <c>job-complete</c>, libvirt <c>virDomainBlockJobAbort(PIVOT)</c>.</summary>
    Task CompleteAsync(CancellationToken cancellationToken = default);

    /// <summary>Ends the job without pivoting: QEMU <c>block-job-cancel</c> (in sync first), libvirt <c>virDomainBlockJobAbort</c>.</summary>
    Task CancelAsync(CancellationToken cancellationToken = default);
}

/// <summary>The word each backend uses for a job type, as a <see cref="LabJobKind"/>.</summary>
public static class LabJobKinds
{
    /// <summary>QEMU's job type (<c>query-jobs</c>' <c>type</c>) or libvirt's (<see cref="Libvirt.LibvirtBlockJob.Type"/>).</summary>
    public static LabJobKind Of(string type) => type switch
    {
        "commit" => LabJobKind.Commit,
        "active-commit" => LabJobKind.ActiveCommit,
        "stream" or "pull" => LabJobKind.Stream,
        "mirror" or "copy" => LabJobKind.Mirror,
        "backup" => LabJobKind.Backup,
        _ => LabJobKind.Other,
    };
}
