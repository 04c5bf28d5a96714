using System.Text.Json.Nodes;
using LabKernel.Images;
using LabKernel.Jobs;
using LabKernel.Qmp;

namespace LabKernel.Block;

/// <summary>
/// The block layer of a running QEMU over QMP: the live backing chain, external snapshots, commit, stream and
/// mirror jobs, and the nodes the monitor owns. Disks are named by the node name they were started with
/// (<c>disk0</c>); their device is <c>{disk}-dev</c> and the current active node is looked up live, so a disk keeps
/// its name across snapshots and pivots. Every QMP command is journaled by <see cref="QmpClient"/>; each operation
/// adds one <c>block</c> entry summarizing it.
/// <para>
/// Make one per QMP connection and keep it: it holds the connection's remembered chains (a machine's
/// <c>machine.Block()</c> and a guest's <c>OpenMonitorAsync</c> hand back the same one every time). The work is
/// done by one class per concern, in this folder: <see cref="ChainQueries"/> (reading chains),
/// <see cref="ExternalSnapshots"/>, <see cref="ChainJobs"/> (commit, stream, mirror), <see cref="BlockNodes"/>
/// (blockdev-add/del) and <see cref="HmpCommit"/>.
/// </para>
/// </summary>
public sealed class BlockLayer : ILabBlock
{
    private readonly ExternalSnapshots _snapshots;
    private readonly ChainJobs _jobs;
    private readonly HmpCommit _hmpCommit;
    private readonly DrivenJobs _driven;

    /// <summary>Wraps a QMP connection (tests pass one over a fake peer). Make one per connection.</summary>
    public BlockLayer(QmpClient qmp)
    {
        Qmp = qmp ?? throw new ArgumentNullException(nameof(qmp));
        Chains = new ChainQueries(this);
        Nodes = new BlockNodes(this);
        _snapshots = new ExternalSnapshots(this);
        _jobs = new ChainJobs(this);
        _hmpCommit = new HmpCommit(this);
        _driven = new DrivenJobs(this);
    }

    public QmpClient Qmp { get; }

    /// <summary>
    /// The machine the images of this QEMU are on: this one, or (for a libvirt domain's monitor) the hypervisor over
    /// SSH. The files the block layer makes, checks and deletes are there.
    /// </summary>
    public LabKernel.Host.ILabHost Host { get; init; } = LabKernel.Host.LocalHost.Instance;

    /// <summary>qemu-img on <see cref="Host"/>.</summary>
    internal QemuImg QemuImg => QemuImg.On(Host);

    /// <summary>Default time limit for jobs driven to the end by the convenience methods.</summary>
    public TimeSpan JobTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// The qdev id of a disk's device: <c>{disk}-dev</c> for the lab's own QEMU command line; a libvirt domain's
    /// devices carry libvirt's aliases instead (<c>vda</c> is <c>virtio-disk0</c>, see <see cref="Libvirt.LibvirtQmp"/>).
    /// </summary>
    public IReadOnlyDictionary<string, string> DeviceIds { get; init; } = new Dictionary<string, string>();

    /// <summary>The qdev id of <paramref name="disk"/>'s device: from <see cref="DeviceIds"/>, else <c>{disk}-dev</c>.</summary>
    public string DeviceIdOf(string disk) => DeviceIds.TryGetValue(disk, out var id) ? id : disk + "-dev";

    /// <summary>This connection's remembered chains.</summary>
    internal ChainViews Views { get; } = new();

    internal ChainQueries Chains { get; }

    internal BlockNodes Nodes { get; }

    // ---------------------------------------------------------------- chain

    /// <summary>
    /// The disk's chain as QEMU sees it, active first. The device's root node comes from
    /// <c>qom-get /machine/peripheral/{disk}-dev/virtio-backend drive</c>, the layers from one flat
    /// <c>query-named-block-nodes</c> (each format node's file and resolved backing file). When the device is not
    /// a virtio-blk disk, falls back to <c>query-block</c> (the device's <c>inserted.image</c> and its
    /// <c>backing-image</c> list).
    /// </summary>
    public Task<LiveChain> QueryChainAsync(string disk, CancellationToken cancellationToken = default) =>
        Chains.QueryChainAsync(disk, cancellationToken);

    /// <summary>
    /// Compares QEMU's live chain with qemu-img's view of the active file's headers
    /// (<c>qemu-img info --backing-chain -U</c>) through <see cref="BackingChain.Compare"/>.
    /// </summary>
    public async Task<(LiveChain Live, BackingChain Headers, ChainAgreement Agreement)> CheckChainAgreementAsync(string disk, CancellationToken cancellationToken = default)
    {
        var live = await QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        var headers = await QemuImg.GetBackingChainAsync(live.Active.Filename, forceShare: true, cancellationToken: cancellationToken).ConfigureAwait(false);
        return (live, headers, headers.Compare(live.Filenames));
    }

    // ---------------------------------------------------------------- external snapshots

    /// <summary>
    /// Takes a live external disk-only snapshot of one or several disks atomically with one QMP
    /// <c>transaction</c> of <c>blockdev-snapshot-sync</c> actions (or <c>blockdev-add</c> +
    /// <c>blockdev-snapshot</c>). Refuses (<see cref="OverlayExistsException"/>) before touching anything when an
    /// overlay file exists. Returns the new chain of every disk, in request order: the lab's last view of the disk
    /// (from <see cref="QueryChainAsync"/> or an earlier snapshot) with the new overlay on top, so no look-up round
    /// trip is spent while the guest runs; a stale view makes QEMU refuse the node and the call retries after a
    /// live look-up. Call <see cref="QueryChainAsync"/> to re-read the chain from QEMU.
    /// </summary>
    public Task<IReadOnlyList<LiveChain>> SnapshotAsync(IReadOnlyList<ExternalSnapshotRequest> disks, SnapshotMethod method = SnapshotMethod.SnapshotSync, CancellationToken cancellationToken = default) =>
        _snapshots.SnapshotAsync(disks, method, cancellationToken);

    /// <summary>Snapshot of one disk; see <see cref="SnapshotAsync(IReadOnlyList{ExternalSnapshotRequest}, SnapshotMethod, CancellationToken)"/>.</summary>
    public async Task<LiveChain> SnapshotAsync(string disk, string overlayFile, SnapshotMethod method = SnapshotMethod.SnapshotSync, CancellationToken cancellationToken = default) =>
        (await SnapshotAsync([new ExternalSnapshotRequest(disk, overlayFile)], method, cancellationToken).ConfigureAwait(false))[0];

    // ---------------------------------------------------------------- nodes

    /// <summary>
    /// Opens an image as a new node: <c>blockdev-add</c> of a qcow2 (or raw) node over a file node, optionally
    /// with a <c>blkdebug</c> node between them injecting errors, and with <c>backing: null</c> when
    /// <paramref name="withBacking"/> is false.
    /// </summary>
    public Task AddImageNodeAsync(string file, string nodeName, string format = "qcow2", bool withBacking = true, BlkdebugError? inject = null, CancellationToken cancellationToken = default) =>
        Nodes.AddImageNodeAsync(file, nodeName, format, withBacking, inject, cancellationToken);

    /// <summary>Closes a node added with <see cref="AddImageNodeAsync"/>: <c>blockdev-del</c>.</summary>
    public Task RemoveNodeAsync(string nodeName, CancellationToken cancellationToken = default) =>
        Nodes.RemoveNodeAsync(nodeName, cancellationToken);

    /// <summary>
    /// After a pivot, closes the monitor-owned nodes (made by <c>-blockdev</c> or <c>blockdev-add</c>) of the image
    /// files that were in the disk's chain <paramref name="before"/> the operation and are no longer in it, as libvirt
    /// does after a pivot it drives itself: a format node before the nodes under it, retried until nothing more can
    /// go (a node still in use stays, as QEMU refuses it). Only those nodes: another disk's nodes, and nodes of files
    /// that were never in this chain, are never touched. Auto-named nodes (<c>#block…</c>) are QEMU's to free.
    /// Returns the node names closed.
    /// </summary>
    public Task<IReadOnlyList<string>> ReleaseNodesLeftBehindAsync(LiveChain before, CancellationToken cancellationToken = default) =>
        Nodes.ReleaseNodesLeftBehindAsync(before, cancellationToken);

    // ---------------------------------------------------------------- HMP commit

    /// <summary>
    /// The documents' HMP <c>commit</c>: copies the active layer's data into its backing file and empties it, the VM
    /// staying on the active layer. HMP names a disk by its drive (BlockBackend) name; <c>-blockdev</c> disks (the
    /// lab's, and libvirt's since 5.x) have none, and then the only HMP form is <c>commit all</c>, which commits
    /// every disk of the VM that has a backing file. The lab sends <c>commit all</c> only when every image it would
    /// write (each such disk's active layer and its backing file) is one the lab made; otherwise nothing is sent and
    /// a <see cref="Host.ForeignImageException"/> names the other disk's image. Use
    /// <see cref="CommitIntoBackingAsync"/> to commit one disk by node instead.
    /// </summary>
    public Task<HmpCommitResult> HmpCommitAsync(string disk, CancellationToken cancellationToken = default) =>
        _hmpCommit.RunAsync(disk, cancellationToken);

    /// <summary>
    /// What HMP <c>commit</c> does, for one disk, by node over QMP: an active <c>block-commit</c> of the active layer
    /// into its backing file, then <c>block-job-cancel</c> at READY, so the data is in the backing file and the disk
    /// stays on its active layer. Only <paramref name="disk"/>'s backing file is written, and only if the lab made it.
    /// </summary>
    public Task<BlockJobResult> CommitIntoBackingAsync(string disk, CancellationToken cancellationToken = default) =>
        _jobs.CommitIntoBackingAsync(disk, cancellationToken);

    // ---------------------------------------------------------------- commit, stream, mirror

    /// <summary>
    /// Starts <c>block-commit</c> on a disk. <paramref name="top"/> and <paramref name="base"/> name layers by node
    /// name, full path or file name; a null top is the active layer (an active commit, which goes READY and
    /// waits for <see cref="BlockJob.CompleteAsync"/> to pivot or <see cref="BlockJob.CancelAsync"/> to keep the
    /// overlay), a null base is the bottom of the chain.
    /// </summary>
    public Task<BlockJob> StartCommitAsync(string disk, string? top = null, string? @base = null, BlockCommitOptions? options = null, CancellationToken cancellationToken = default) =>
        _jobs.StartCommitAsync(disk, top, @base, options, cancellationToken);

    /// <summary>
    /// Commits and waits: an intermediate commit to its conclusion, an active commit to READY then
    /// <c>job-complete</c> (pivot to the base). Returns the new chain.
    /// </summary>
    public Task<LiveChain> CommitAsync(string disk, string? top = null, string? @base = null, BlockCommitOptions? options = null, CancellationToken cancellationToken = default) =>
        _jobs.CommitAsync(disk, top, @base, options, cancellationToken);

    /// <summary>
    /// Starts <c>block-stream</c>: copies data from the backing layers into the active layer; with a
    /// <paramref name="base"/>, only the layers above it (the base stays as the new backing file).
    /// </summary>
    public Task<BlockJob> StartStreamAsync(string disk, string? @base = null, BlockStreamOptions? options = null, CancellationToken cancellationToken = default) =>
        _jobs.StartStreamAsync(disk, @base, options, cancellationToken);

    /// <summary>Streams and waits for the job; returns the new chain.</summary>
    public Task<LiveChain> StreamAsync(string disk, string? @base = null, BlockStreamOptions? options = null, CancellationToken cancellationToken = default) =>
        _jobs.StreamAsync(disk, @base, options, cancellationToken);

    /// <summary>
    /// Starts a mirror of a disk: <c>drive-mirror</c> for a file target (new: <c>mode=absolute-paths</c>, refused
    /// when the file exists; existing: <c>mode=existing</c>), <c>blockdev-mirror</c> for a node target. The job goes
    /// READY once the target is in sync; then <see cref="BlockJob.CompleteAsync"/> pivots the disk to the target
    /// and <see cref="BlockJob.CancelAsync"/> leaves the source active with the target a consistent copy.
    /// </summary>
    public Task<BlockJob> StartMirrorAsync(string disk, MirrorTarget target, MirrorOptions? options = null, CancellationToken cancellationToken = default) =>
        _jobs.StartMirrorAsync(disk, target, options, cancellationToken);

    /// <summary>
    /// A mirror driven to its end in one call: <see cref="StartMirrorAsync"/>, then (a speed limit in
    /// <paramref name="options"/> is lifted first) READY, awaited on the job's events, then
    /// <paramref name="ending"/> (default: cancel, so the disk stays on its source and the target is a consistent
    /// copy; complete pivots the disk onto the target and closes the nodes of the images it left).
    /// </summary>
    public async Task<BlockJobRun> MirrorAsync(string disk, MirrorTarget target, MirrorOptions? options = null, JobEnding? ending = null, CancellationToken cancellationToken = default) =>
        (await MirrorAsync<bool>(disk, target, options, ending, null, cancellationToken).ConfigureAwait(false)).Run;

    /// <summary>
    /// As <see cref="MirrorAsync(string, MirrorTarget, MirrorOptions?, JobEnding?, CancellationToken)"/>, running
    /// <paramref name="whileCopying"/> (a guest workload) right after the start, while the job copies (at
    /// <see cref="MirrorOptions.Speed"/>, so it takes a while); when it ends, the job's progress and HMP
    /// <c>info block-jobs</c> are recorded (<see cref="BlockJobRun.AtWorkEnd"/>), the limit is lifted, and the job
    /// is ended at READY. Returns the run and the work's result.
    /// </summary>
    public Task<(BlockJobRun Run, T Work)> MirrorAsync<T>(string disk, MirrorTarget target, MirrorOptions? options, JobEnding? ending, Func<CancellationToken, Task<T>>? whileCopying, CancellationToken cancellationToken = default)
    {
        options = (options ?? new MirrorOptions()) with { OnReady = ReadyAction.Wait };
        return _driven.RunAsync(disk, () => StartMirrorAsync(disk, target, options, cancellationToken), options.Speed is > 0, ending ?? JobEnding.Cancel, whileCopying, cancellationToken);
    }

    /// <summary>
    /// The documents' HMP <c>commit</c> where the lab may send it (<see cref="HmpCommitAsync"/>); where it would
    /// write an image the lab did not make, nothing is sent and the disk's own layer is committed by node instead
    /// (<see cref="CommitIntoBackingAsync"/>). Either way the active layer's data is copied into its backing file
    /// and the disk stays on its active layer. The result says which was done.
    /// </summary>
    public Task<CommitIntoBacking> HmpCommitOrByNodeAsync(string disk, CancellationToken cancellationToken = default) =>
        _driven.HmpCommitOrByNodeAsync(disk, cancellationToken);

    /// <summary>
    /// A full mirror onto <paramref name="target"/> (a new qcow2 of the disk's size) served over NBD by a separate
    /// <c>qemu-storage-daemon</c> (<see cref="NbdExport"/>, on a unix socket), reached through an <c>nbd</c> node with
    /// a <c>reconnect-delay</c> longer than the outage (<c>blockdev-mirror</c>). Once part of the disk is copied the
    /// daemon is stopped (SIGTERM) and <paramref name="duringOutage"/> starts; HMP <c>info block-jobs</c> is asked
    /// during the outage; after <see cref="OutagePlan.Outage"/> (and the work, within <see cref="OutagePlan.WorkLimit"/>)
    /// the daemon is started again; once the job is seen moving the speed limit is lifted, and at READY the job is
    /// cancelled, so the target is a copy and the disk stays. The node is deleted and the daemon stopped at the end.
    /// </summary>
    public Task<(OutageRun Run, T Work)> MirrorThroughOutageAsync<T>(string disk, string target, OutagePlan plan, Func<CancellationToken, Task<T>> duringOutage, CancellationToken cancellationToken = default) =>
        MirrorOutage.RunAsync(this, Qmp.Time, disk, target, plan, duringOutage, cancellationToken);

    /// <summary>
    /// The same outage one step at a time (<see cref="MirrorOutage"/>): makes <paramref name="target"/> (a new qcow2 of
    /// the disk's size), serves it over NBD, opens it as an <c>nbd</c> node and starts <c>blockdev-mirror</c> onto it
    /// at <see cref="OutagePlan.Speed"/>, its offset sampled from now on.
    /// </summary>
    public Task<MirrorOutage> StartMirrorOntoNbdAsync(string disk, string target, OutagePlan plan, CancellationToken cancellationToken = default) =>
        MirrorOutage.StartAsync(this, Qmp.Time, disk, target, plan, cancellationToken);

    /// <summary>
    /// Opens <paramref name="export"/> as an <c>nbd</c> client node (<c>blockdev-add</c>): while the server is away,
    /// requests wait up to <paramref name="reconnectDelay"/> for it, then fail.
    /// </summary>
    public Task AddNbdNodeAsync(NbdExport export, string nodeName, TimeSpan reconnectDelay, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(export);
        return ExecuteTranslatedAsync("blockdev-add", export.NodeOptions(nodeName, reconnectDelay), cancellationToken);
    }

    /// <summary>Lists the jobs QEMU knows about: <c>query-jobs</c> (id, type, status, progress, error).</summary>
    public Task<IReadOnlyList<JsonObject>> QueryJobsAsync(CancellationToken cancellationToken = default) =>
        _jobs.QueryJobsAsync(cancellationToken);

    // ---------------------------------------------------------------- helpers

    /// <summary>Sends a command and turns the "no such node" errors <see cref="QmpErrorTranslation"/> knows into <see cref="UnknownBlockNodeException"/>.</summary>
    internal async Task<JsonNode?> ExecuteTranslatedAsync(string command, JsonObject args, CancellationToken cancellationToken)
    {
        try
        {
            return await Qmp.ExecuteAsync(command, args, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (QmpErrorException e)
        {
            throw QmpErrorTranslation.Translate(e);
        }
    }

    internal static async Task TryAsync(Func<Task> action)
    {
        try
        {
            await action().ConfigureAwait(false);
        }
        catch (LabException)
        {
        }
    }

    // ---------------------------------------------------------------- the backend-neutral view (ILabBlock)

    GuestBackend ILabBlock.Backend => GuestBackend.Qemu;

    /// <summary>All of QMP's: node mirrors, backups, HMP, job control and error policies (<see cref="LabBlockCapabilities.Qmp"/>).</summary>
    public LabBlockCapabilities Capabilities => LabBlockCapabilities.Qmp;

    async Task<ILabJob> ILabBlock.StartCommitAsync(string disk, string? top, string? @base, CancellationToken cancellationToken) =>
        await StartCommitAsync(disk, top, @base, cancellationToken: cancellationToken).ConfigureAwait(false);

    async Task<ILabJob> ILabBlock.StartStreamAsync(string disk, string? @base, CancellationToken cancellationToken) =>
        await StartStreamAsync(disk, @base, cancellationToken: cancellationToken).ConfigureAwait(false);

    /// <summary><c>drive-mirror</c> onto a new file (<see cref="MirrorTarget.NewFile"/>): <c>sync=top</c> when shallow, else <c>full</c>.</summary>
    async Task<ILabJob> ILabBlock.StartMirrorAsync(string disk, string target, bool shallow, CancellationToken cancellationToken)
    {
        var (mirrorTarget, options) = MirrorStart.ForQemu(target, shallow);
        return await StartMirrorAsync(disk, mirrorTarget, options, cancellationToken).ConfigureAwait(false);
    }

    Task<LiveChain> ILabBlock.SnapshotAsync(string disk, string overlayFile, CancellationToken cancellationToken) =>
        SnapshotAsync(disk, overlayFile, cancellationToken: cancellationToken);

    Task<LiveChain> ILabBlock.CommitAsync(string disk, string top, string @base, CancellationToken cancellationToken) =>
        CommitAsync(disk, top, @base, cancellationToken: cancellationToken);

    Task<LiveChain> ILabBlock.StreamAsync(string disk, string? @base, CancellationToken cancellationToken) =>
        StreamAsync(disk, @base, cancellationToken: cancellationToken);

    Task<BackupResult> ILabBlock.FullBackupAsync(string disk, string targetFile, BackupOptions? options, CancellationToken cancellationToken) =>
        Backups.FullBackupAsync(this, disk, targetFile, options, cancellationToken);

    Task<BackupResult> ILabBlock.IncrementalBackupAsync(string disk, string targetFile, BackupResult previous, BackupOptions options, CancellationToken cancellationToken) =>
        Backups.IncrementalBackupAsync(this, disk, targetFile, previous, options, cancellationToken);

    Task<IReadOnlyList<DirtyBitmap>> ILabBlock.QueryBitmapsAsync(string disk, CancellationToken cancellationToken) =>
        Backups.QueryBitmapsAsync(this, disk, cancellationToken);
}
