using LabKernel.Images;
using LabKernel.Jobs;

namespace LabKernel.Block;

/// <summary>
/// The block operations an experiment notebook needs, the same on both backends: QEMU driven directly over QMP
/// (<see cref="BlockLayer"/>, disks named by their root node, <c>disk0</c>) and a libvirt domain
/// (<see cref="Libvirt.LibvirtBlock"/>, disks named by their target, <c>vda</c>). Chains come back as
/// <see cref="LiveChain"/> (active first) from either, so a notebook's checks and plots do not care which one ran;
/// jobs come back as <see cref="ILabJob"/>, driven the same way on both. What a backend cannot do is a
/// <see cref="Capabilities"/> flag, asked instead of the backend's type.
/// </summary>
public interface ILabBlock
{
    /// <summary><c>qemu</c> or <c>libvirt</c>.</summary>
    GuestBackend Backend { get; }

    /// <summary>What this block layer can do beyond the operations below.</summary>
    LabBlockCapabilities Capabilities { get; }

    /// <summary>The disk's chain as the running hypervisor sees it.</summary>
    Task<LiveChain> QueryChainAsync(string disk, CancellationToken cancellationToken = default);

    /// <summary>The live chain against the image headers (<c>qemu-img info --backing-chain -U</c>).</summary>
    Task<(LiveChain Live, BackingChain Headers, ChainAgreement Agreement)> CheckChainAgreementAsync(string disk, CancellationToken cancellationToken = default);

    /// <summary>A live external disk-only snapshot: the guest goes on writing into the new <paramref name="overlayFile"/>.</summary>
    Task<LiveChain> SnapshotAsync(string disk, string overlayFile, CancellationToken cancellationToken = default);

    /// <summary>Commits <paramref name="top"/> (an intermediate layer) into <paramref name="base"/> and waits for the job; returns the shortened chain.</summary>
    Task<LiveChain> CommitAsync(string disk, string top, string @base, CancellationToken cancellationToken = default);

    /// <summary>Pulls the data below the active layer (down to <paramref name="base"/>, or all of it) into it and waits; returns the chain.</summary>
    Task<LiveChain> StreamAsync(string disk, string? @base = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Starts a commit and returns at once: <paramref name="top"/> (a layer's file; null: the active layer, an active
    /// commit, which goes READY and waits for <see cref="ILabJob.CompleteAsync"/> to pivot onto the base or
    /// <see cref="ILabJob.CancelAsync"/> to keep the overlay) into <paramref name="base"/> (null: the bottom of the
    /// chain, refused unless the lab made it). QEMU <c>block-commit</c>, libvirt <c>virDomainBlockCommit</c>.
    /// </summary>
    Task<ILabJob> StartCommitAsync(string disk, string? top = null, string? @base = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Starts a stream and returns at once: the data below the active layer (down to <paramref name="base"/>, or all of
    /// it) into it; the job ends by itself. QEMU <c>block-stream</c>, libvirt <c>virDomainBlockPull</c>/<c>virDomainBlockRebase</c>.
    /// </summary>
    Task<ILabJob> StartStreamAsync(string disk, string? @base = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Starts a mirror of <paramref name="disk"/> onto the new file <paramref name="target"/> (refused with
    /// <see cref="OverlayExistsException"/> when it exists) and returns at once: <paramref name="shallow"/> copies only
    /// the active layer, the target backed by the source's backing file; otherwise the whole chain into a standalone
    /// image. The job goes READY once the target is in sync; then <see cref="ILabJob.CompleteAsync"/> pivots the disk
    /// onto the target and <see cref="ILabJob.CancelAsync"/> leaves it on its source. QEMU <c>drive-mirror</c>
    /// (<c>sync=top</c> or <c>full</c>, <c>mode=absolute-paths</c>), libvirt <c>virDomainBlockCopy</c> (SHALLOW or not,
    /// REUSE_EXT onto a file the lab creates, TRANSIENT_JOB).
    /// </summary>
    Task<ILabJob> StartMirrorAsync(string disk, string target, bool shallow = false, CancellationToken cancellationToken = default);

    /// <summary>
    /// A full backup of <paramref name="disk"/> into the new qcow2 <paramref name="targetFile"/>: one QMP transaction
    /// of <c>blockdev-backup sync=full</c>, the dirty bitmap <see cref="BackupOptions.Bitmap"/> started (or cleared)
    /// and, with <see cref="BackupOptions.SnapshotOverlay"/>, a snapshot that freezes the layer below at the backup
    /// point; waits for the job. Both backends run it through QMP (<see cref="Backups"/>, on a libvirt domain through
    /// its monitor passthrough); a block layer without one refuses it (<see cref="LabBlockCapabilities.Backup"/>).
    /// </summary>
    Task<BackupResult> FullBackupAsync(string disk, string targetFile, BackupOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// An increment on top of <paramref name="previous"/>: only the clusters <see cref="BackupOptions.Bitmap"/> marked
    /// since, into the new qcow2 <paramref name="targetFile"/> backed by <paramref name="previous"/>'s target
    /// (<c>blockdev-backup sync=bitmap</c>), as <see cref="FullBackupAsync"/>.
    /// </summary>
    Task<BackupResult> IncrementalBackupAsync(string disk, string targetFile, BackupResult previous, BackupOptions options, CancellationToken cancellationToken = default);

    /// <summary>The dirty bitmaps on the disk's nodes (<c>query-block</c>), as <see cref="FullBackupAsync"/> reaches them.</summary>
    Task<IReadOnlyList<DirtyBitmap>> QueryBitmapsAsync(string disk, CancellationToken cancellationToken = default);
}

/// <summary>
/// What a backend's block layer can do beyond what <see cref="ILabBlock"/> offers on both: a caller asks these
/// instead of testing the backend's type. What a guest can snapshot and revert is its
/// <c>ILabGuest.Snapshots.Supports(kind)</c> and <c>LabCapabilities</c>.
/// </summary>
public sealed record LabBlockCapabilities
{
    /// <summary>A mirror onto a node the monitor opened (<c>blockdev-mirror</c>, <see cref="MirrorTarget.Node"/>), e.g. an NBD export.</summary>
    public bool MirrorToNode { get; init; }

    /// <summary>Full and incremental backups with dirty bitmaps (<c>blockdev-backup</c>, <c>Backup.cs</c>; on libvirt through the domain's monitor passthrough).</summary>
    public bool Backup { get; init; }

    /// <summary>HMP commands on this connection (the documents' <c>commit</c>, <c>info block-jobs</c>).</summary>
    public bool Hmp { get; init; }

    /// <summary>A running job can be paused, resumed and slowed (<c>job-pause</c>, <c>job-resume</c>, <c>block-job-set-speed</c>).</summary>
    public bool JobControl { get; init; }

    /// <summary>Each job's <c>BLOCK_JOB_ERROR</c>s and an error policy of the caller's choosing (<c>on-source-error</c>, <c>on-target-error</c>).</summary>
    public bool ErrorPolicies { get; init; }

    /// <summary>Everything the QEMU backend's <see cref="BlockLayer"/> has (over its own QMP socket or a libvirt domain's monitor passthrough).</summary>
    public static LabBlockCapabilities Qmp { get; } = new() { MirrorToNode = true, Backup = true, Hmp = true, JobControl = true, ErrorPolicies = true };

    /// <summary>Only what both backends have (libvirt's own block API: commit, pull, copy, abort and pivot).</summary>
    public static LabBlockCapabilities Common { get; } = new();
}
