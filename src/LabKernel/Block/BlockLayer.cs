using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LabKernel.Images;
using LabKernel.Jobs;
using LabKernel.Journal;
using LabKernel.Machines;
using LabKernel.Qmp;

namespace LabKernel.Block;

/// <summary>
/// The block layer of a running QEMU over QMP: the live backing chain, external and internal snapshots, commit,
/// stream and mirror jobs. Disks are named by the node name they were started with (<c>disk0</c>); their
/// device is <c>{disk}-dev</c> and the current active node is looked up live, so a disk keeps its name across
/// snapshots and pivots. Every QMP command is journaled by <see cref="QmpClient"/>; each operation adds one
/// <c>block</c> entry summarizing it.
/// </summary>
public sealed class BlockLayer : ILabBlock
{
    private static long _counter;

    // The lab's last view of each disk's chain per connection: lets a snapshot skip the look-up round trips
    // (each costs ~2 ms against a running TCG guest). A stale view is detected by QEMU refusing the snapshot
    // of a node that is no longer a root, and the snapshot is retried after a live look-up.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<QmpClient, System.Collections.Concurrent.ConcurrentDictionary<string, LiveChain>> Views = new();

    private System.Collections.Concurrent.ConcurrentDictionary<string, LiveChain> View => Views.GetValue(Qmp, _ => new());

    /// <summary>Wraps a QMP connection (tests pass one over a fake peer).</summary>
    public BlockLayer(QmpClient qmp, QemuMachine? machine = null)
    {
        Qmp = qmp ?? throw new ArgumentNullException(nameof(qmp));
        Machine = machine;
    }

    public QmpClient Qmp { get; }

    /// <summary>The machine, when the layer was obtained through <see cref="BlockLayerExtensions.Block"/>.</summary>
    public QemuMachine? Machine { get; }

    /// <summary>Default time limit for jobs driven to the end by the convenience methods.</summary>
    public TimeSpan JobTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// The qdev id of a disk's device: <c>{disk}-dev</c> for the lab's own QEMU command line; a libvirt domain's
    /// devices carry libvirt's aliases instead (<c>vda</c> is <c>virtio-disk0</c>, see <see cref="Libvirt.LibvirtQmp"/>).
    /// </summary>
    public IReadOnlyDictionary<string, string> DeviceIds { get; init; } = new Dictionary<string, string>();

    private string DeviceIdOf(string disk) => DeviceIds.TryGetValue(disk, out var id) ? id : DeviceId(disk);

    internal static string NextId(string prefix) =>
        $"{prefix}{Interlocked.Increment(ref _counter).ToString(CultureInfo.InvariantCulture)}";

    // ---------------------------------------------------------------- chain

    /// <summary>
    /// The disk's chain as QEMU sees it, active first. The device's root node comes from
    /// <c>qom-get /machine/peripheral/{disk}-dev/virtio-backend drive</c>, the layers from one flat
    /// <c>query-named-block-nodes</c> (each format node's file and resolved backing file). When the device is not
    /// a virtio-blk disk, falls back to <c>query-block</c> (the device's <c>inserted.image</c> and its
    /// <c>backing-image</c> list).
    /// </summary>
    public async Task<LiveChain> QueryChainAsync(string disk, CancellationToken cancellationToken = default)
    {
        var chain = await QueryChainCoreAsync(disk, cancellationToken).ConfigureAwait(false);
        View[disk] = chain;
        return chain;
    }

    private async Task<LiveChain> QueryChainCoreAsync(string disk, CancellationToken cancellationToken)
    {
        var root = await TryRootNodeAsync(disk, cancellationToken).ConfigureAwait(false);
        if (root is not null)
        {
            var fast = await ChainFromRootAsync(disk, root, cancellationToken).ConfigureAwait(false);
            if (fast is not null)
            {
                return fast;
            }
        }
        var blocks = await Qmp.ExecuteAsync("query-block", cancellationToken: cancellationToken).ConfigureAwait(false) as JsonArray ?? [];
        var nodes = await Qmp.ExecuteAsync("query-named-block-nodes", new JsonObject { ["flat"] = true }, cancellationToken: cancellationToken).ConfigureAwait(false) as JsonArray ?? [];
        var chain = LiveChain.FromQmp(disk, DeviceIdOf(disk), blocks, nodes)
            ?? throw new UnknownBlockNodeException(disk, "in query-block (no such disk, or no medium)");
        // Layers below the active one have auto node names; resolve them by file.
        var byName = nodes.OfType<JsonObject>().Where(n => n["node-name"] is not null).ToDictionary(n => n["node-name"]!.GetValue<string>(), n => n);
        var layers = chain.Layers.ToList();
        for (var i = 1; i < layers.Count; i++)
        {
            var resolved = ResolveBacking(byName, layers[i]);
            if (resolved is not null)
            {
                layers[i] = layers[i] with { NodeName = resolved };
            }
        }
        return chain with { Layers = layers };
    }

    /// <summary>The root node of a virtio-blk disk from its <c>drive</c> property, or null when QOM has no such device.</summary>
    internal async Task<string?> TryRootNodeAsync(string disk, CancellationToken cancellationToken)
    {
        try
        {
            var v = await Qmp.ExecuteAsync("qom-get", new JsonObject { ["path"] = $"/machine/peripheral/{DeviceIdOf(disk)}/virtio-backend", ["property"] = "drive" }, cancellationToken: cancellationToken).ConfigureAwait(false);
            var name = v is JsonValue jv && jv.TryGetValue<string>(out var s) ? s : null;
            return string.IsNullOrEmpty(name) ? null : name;
        }
        catch (QmpErrorException)
        {
            return null;
        }
    }

    /// <summary>Walks the chain down from <paramref name="root"/> in one flat <c>query-named-block-nodes</c>.</summary>
    internal async Task<LiveChain?> ChainFromRootAsync(string disk, string root, CancellationToken cancellationToken)
    {
        var nodes = (await Qmp.ExecuteAsync("query-named-block-nodes", new JsonObject { ["flat"] = true }, cancellationToken: cancellationToken).ConfigureAwait(false) as JsonArray ?? [])
            .OfType<JsonObject>().ToList();
        var current = nodes.FirstOrDefault(n => n["node-name"]?.GetValue<string>() == root);
        var layers = new List<LiveLayer>();
        var used = new HashSet<string>();
        while (current is not null && layers.Count < 1000)
        {
            var name = current["node-name"]!.GetValue<string>();
            used.Add(name);
            var image = current["image"] as JsonObject;
            var file = image?["filename"]?.GetValue<string>() ?? current["file"]?.GetValue<string>() ?? "";
            var format = image?["format"]?.GetValue<string>() ?? current["drv"]?.GetValue<string>() ?? "";
            layers.Add(new LiveLayer(name, file, format, image?["backing-filename"]?.GetValue<string>()));
            var next = image?["full-backing-filename"]?.GetValue<string>() ?? current["backing_file"]?.GetValue<string>();
            if (string.IsNullOrEmpty(next))
            {
                break;
            }
            current = nodes.FirstOrDefault(n => n["file"]?.GetValue<string>() == next && n["drv"]?.GetValue<string>() is { } d && d != "file"
                && !used.Contains(n["node-name"]!.GetValue<string>()));
            if (current is null)
            {
                return null;
            }
        }
        return layers.Count == 0 ? null : new LiveChain(disk, $"/machine/peripheral/{DeviceIdOf(disk)}/virtio-backend", layers);
    }

    private static string? ResolveBacking(Dictionary<string, JsonObject> byName, LiveLayer lower)
    {
        var candidates = byName.Values.Where(n => n["file"]?.GetValue<string>() == lower.Filename && n["drv"]?.GetValue<string>() == lower.Format)
            .Select(n => n["node-name"]!.GetValue<string>()).ToList();
        return candidates.Count == 0 ? null : candidates.Contains(lower.NodeName) ? lower.NodeName : candidates[0];
    }

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
    public async Task<IReadOnlyList<LiveChain>> SnapshotAsync(IReadOnlyList<ExternalSnapshotRequest> disks, SnapshotMethod method = SnapshotMethod.SnapshotSync, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(disks);
        if (disks.Count == 0)
        {
            throw new LabUsageException("a snapshot needs at least one disk");
        }
        var entry = LabJournal.Current.Begin("block", "snapshot " + string.Join(", ", disks.Select(d => $"{d.Disk} -> {d.OverlayFile}")));
        try
        {
            var files = new List<string>();
            foreach (var d in disks)
            {
                var file = Path.GetFullPath(d.OverlayFile);
                if (File.Exists(file) || Directory.Exists(file))
                {
                    throw new OverlayExistsException(file);
                }
                if (files.Contains(file))
                {
                    throw new LabUsageException($"overlay {file} is named twice");
                }
                files.Add(file);
            }
            var nodes = disks.Select(d => d.OverlayNodeName ?? NextId($"{d.Disk}-snap")).ToList();
            var chains = new List<LiveChain>();
            var fromView = method == SnapshotMethod.SnapshotSync;
            foreach (var d in disks)
            {
                if (fromView && View.TryGetValue(d.Disk, out var known))
                {
                    chains.Add(known);
                }
                else
                {
                    fromView = false;
                    chains.Clear();
                    break;
                }
            }
            if (!fromView)
            {
                foreach (var d in disks)
                {
                    chains.Add(await QueryChainAsync(d.Disk, cancellationToken).ConfigureAwait(false));
                }
            }
            try
            {
                await RunSnapshotTransactionAsync(chains, files, nodes, method, cancellationToken).ConfigureAwait(false);
            }
            catch (QmpErrorException) when (fromView)
            {
                // The remembered chain may be stale (someone else changed the disk): look it up and retry once.
                chains.Clear();
                foreach (var d in disks)
                {
                    chains.Add(await QueryChainAsync(d.Disk, cancellationToken).ConfigureAwait(false));
                }
                try
                {
                    await RunSnapshotTransactionAsync(chains, files, nodes, method, cancellationToken).ConfigureAwait(false);
                }
                catch (QmpErrorException e)
                {
                    throw Translate(e);
                }
            }
            catch (QmpErrorException e)
            {
                throw Translate(e);
            }

            var result = new List<LiveChain>();
            for (var i = 0; i < disks.Count; i++)
            {
                var old = chains[i];
                var chain = old with { Layers = [new LiveLayer(nodes[i], files[i], "qcow2", old.Active.Filename), .. old.Layers] };
                View[disks[i].Disk] = chain;
                result.Add(chain);
            }
            entry.Complete(string.Join("; ", result.Select(c => c.ToText())));
            return result;
        }
        catch (Exception e)
        {
            entry.Fail(e.Message);
            throw;
        }
    }

    private async Task RunSnapshotTransactionAsync(List<LiveChain> chains, List<string> files, List<string> nodes, SnapshotMethod method, CancellationToken cancellationToken)
    {
        var created = new List<string>();
        var added = new List<string>();
        var actions = new JsonArray();
        try
        {
            for (var i = 0; i < chains.Count; i++)
            {
                var active = chains[i].Active;
                created.Add(files[i]);
                Host.LabFiles.MarkCreated(files[i]);
                if (method == SnapshotMethod.SnapshotSync)
                {
                    actions.Add(new JsonObject
                    {
                        ["type"] = "blockdev-snapshot-sync",
                        ["data"] = new JsonObject
                        {
                            ["node-name"] = active.NodeName,
                            ["snapshot-file"] = files[i],
                            ["snapshot-node-name"] = nodes[i],
                            ["format"] = "qcow2",
                            ["mode"] = "absolute-paths",
                        },
                    });
                }
                else
                {
                    await QemuImg.CreateAsync(files[i], "qcow2", null, new CreateOptions { BackingFile = active.Filename, BackingFormat = active.Format }, cancellationToken).ConfigureAwait(false);
                    await AddImageNodeAsync(files[i], nodes[i], withBacking: false, cancellationToken: cancellationToken).ConfigureAwait(false);
                    added.Add(nodes[i]);
                    actions.Add(new JsonObject
                    {
                        ["type"] = "blockdev-snapshot",
                        ["data"] = new JsonObject { ["node"] = active.NodeName, ["overlay"] = nodes[i] },
                    });
                }
            }
            await Qmp.ExecuteAsync("transaction", new JsonObject { ["actions"] = actions }, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (LabException)
        {
            // Undo what this call created (none of these files existed before); QEMU's transaction is all-or-nothing.
            foreach (var n in added)
            {
                await TryAsync(() => RemoveNodeAsync(n, CancellationToken.None)).ConfigureAwait(false);
            }
            foreach (var f in created)
            {
                Host.LabFiles.DeleteIfLabMade(f);
            }
            throw;
        }
    }

    /// <summary>Snapshot of one disk; see <see cref="SnapshotAsync(IReadOnlyList{ExternalSnapshotRequest}, SnapshotMethod, CancellationToken)"/>.</summary>
    public async Task<LiveChain> SnapshotAsync(string disk, string overlayFile, SnapshotMethod method = SnapshotMethod.SnapshotSync, CancellationToken cancellationToken = default) =>
        (await SnapshotAsync([new ExternalSnapshotRequest(disk, overlayFile)], method, cancellationToken).ConfigureAwait(false))[0];

    // ---------------------------------------------------------------- nodes

    /// <summary>
    /// Opens an image as a new node: <c>blockdev-add</c> of a qcow2 (or raw) node over a file node, optionally
    /// with a <c>blkdebug</c> node between them injecting errors, and with <c>backing: null</c> when
    /// <paramref name="withBacking"/> is false.
    /// </summary>
    public async Task AddImageNodeAsync(string file, string nodeName, string format = "qcow2", bool withBacking = true, BlkdebugError? inject = null, CancellationToken cancellationToken = default)
    {
        if (!File.Exists(file))
        {
            throw new OverlayMissingException(file, "image");
        }
        JsonObject fileNode = new() { ["driver"] = "file", ["filename"] = Path.GetFullPath(file) };
        if (inject is not null)
        {
            fileNode = new JsonObject
            {
                ["driver"] = "blkdebug",
                ["image"] = fileNode,
                ["inject-error"] = new JsonArray(new JsonObject
                {
                    ["event"] = inject.Event,
                    ["errno"] = inject.Errno,
                    ["once"] = inject.Once,
                }),
            };
        }
        var args = new JsonObject { ["driver"] = format, ["node-name"] = nodeName, ["file"] = fileNode };
        if (!withBacking && format == "qcow2")
        {
            args["backing"] = null;
        }
        await ExecuteTranslatedAsync("blockdev-add", args, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Closes a node added with <see cref="AddImageNodeAsync"/>: <c>blockdev-del</c>.</summary>
    public Task RemoveNodeAsync(string nodeName, CancellationToken cancellationToken = default) =>
        ExecuteTranslatedAsync("blockdev-del", new JsonObject { ["node-name"] = nodeName }, cancellationToken);

    /// <summary>
    /// After a pivot, closes the monitor-owned nodes (made by <c>-blockdev</c> or <c>blockdev-add</c>) of the image
    /// files that were in the disk's chain <paramref name="before"/> the operation and are no longer in it, as libvirt
    /// does after a pivot it drives itself: a format node before the nodes under it, retried until nothing more can
    /// go (a node still in use stays, as QEMU refuses it). Only those nodes: another disk's nodes, and nodes of files
    /// that were never in this chain, are never touched. Auto-named nodes (<c>#block…</c>) are QEMU's to free.
    /// Returns the node names closed.
    /// </summary>
    public async Task<IReadOnlyList<string>> ReleaseNodesLeftBehindAsync(LiveChain before, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(before);
        var now = await QueryChainAsync(before.Disk, cancellationToken).ConfigureAwait(false);
        var leftBehind = before.Filenames.Except(now.Filenames, StringComparer.Ordinal).ToHashSet(StringComparer.Ordinal);
        var released = new List<string>();
        var progress = leftBehind.Count > 0;
        while (progress)
        {
            progress = false;
            var nodes = (await Qmp.ExecuteAsync("query-named-block-nodes", new JsonObject { ["flat"] = true }, cancellationToken: cancellationToken).ConfigureAwait(false) as JsonArray ?? [])
                .OfType<JsonObject>()
                .Select(n => (Name: n["node-name"]?.GetValue<string>() ?? "", File: n["file"]?.GetValue<string>() ?? "", Driver: n["drv"]?.GetValue<string>() ?? ""))
                .Where(n => n.Name.Length > 0 && !n.Name.StartsWith('#') && leftBehind.Contains(n.File) && !released.Contains(n.Name))
                .OrderBy(n => n.Driver == "file" ? 1 : 0)
                .ToList();
            foreach (var n in nodes)
            {
                try
                {
                    await Qmp.ExecuteAsync("blockdev-del", new JsonObject { ["node-name"] = n.Name }, cancellationToken: cancellationToken).ConfigureAwait(false);
                    released.Add(n.Name);
                    progress = true;
                }
                catch (QmpErrorException)
                {
                    // Still in use (a parent holds it): a later round may free it.
                }
            }
        }
        return released;
    }

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
    public async Task<HmpCommitResult> HmpCommitAsync(string disk, CancellationToken cancellationToken = default)
    {
        var chain = await QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        if (chain.Count < 2)
        {
            throw new BlockOperationException($"cannot commit {disk}: {chain.Active.Name} has no backing file");
        }
        var devices = await QueryCommitTargetsAsync(cancellationToken).ConfigureAwait(false);
        var device = DeviceIdOf(disk);
        var mine = devices.FirstOrDefault(d => d.Qdev == device || d.Qdev.StartsWith($"/machine/peripheral/{device}/", StringComparison.Ordinal));
        var all = mine is null || mine.DriveName.Length == 0;
        var affected = all ? devices.Where(d => d.Backing is not null).ToList() : [mine!];
        foreach (var d in affected)
        {
            var what = all ? $"send HMP 'commit all', which also commits disk {d.Qdev} ({d.Active} into {d.Backing})" : $"commit {d.Active} into {d.Backing}";
            Host.LabFiles.EnsureMayModify(d.Active, what);
            Host.LabFiles.EnsureMayModify(d.Backing!, what);
        }
        var command = all ? "commit all" : $"commit {mine!.DriveName}";
        var entry = LabJournal.Current.Begin("block", $"HMP {command} ({string.Join(", ", affected.Select(d => $"{Path.GetFileName(d.Active)} into {Path.GetFileName(d.Backing)}"))})");
        var reply = (await Qmp.HumanMonitorCommandAsync(command, JobTimeout, cancellationToken).ConfigureAwait(false)).Trim();
        if (reply.Length > 0)
        {
            entry.Fail(reply);
            throw new BlockOperationException($"HMP {command} failed: {reply.Split('\n')[0]}");
        }
        entry.Complete("done");
        return new HmpCommitResult(command, affected.Select(d => d.Backing!).ToArray());
    }

    /// <summary>
    /// What HMP <c>commit</c> does, for one disk, by node over QMP: an active <c>block-commit</c> of the active layer
    /// into its backing file, then <c>block-job-cancel</c> at READY, so the data is in the backing file and the disk
    /// stays on its active layer. Only <paramref name="disk"/>'s backing file is written, and only if the lab made it.
    /// </summary>
    public async Task<BlockJobResult> CommitIntoBackingAsync(string disk, CancellationToken cancellationToken = default)
    {
        var chain = await QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        if (chain.Count < 2)
        {
            throw new BlockOperationException($"cannot commit {disk}: {chain.Active.Name} has no backing file");
        }
        var backing = chain.Layers[1];
        Host.LabFiles.EnsureMayModify(backing.Filename, $"commit {disk} into {backing.Filename}");
        await using var job = await StartCommitAsync(disk, top: null, @base: backing.Filename, cancellationToken: cancellationToken).ConfigureAwait(false);
        await job.WaitReadyAsync(JobTimeout, cancellationToken).ConfigureAwait(false);
        await job.CancelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        return await job.WaitAsync(JobTimeout, cancellationToken).ConfigureAwait(false);
    }

    private sealed record CommitTarget(string DriveName, string Qdev, string Active, string? Backing);

    private async Task<IReadOnlyList<CommitTarget>> QueryCommitTargetsAsync(CancellationToken cancellationToken)
    {
        var blocks = await Qmp.ExecuteAsync("query-block", cancellationToken: cancellationToken).ConfigureAwait(false) as JsonArray ?? [];
        var result = new List<CommitTarget>();
        foreach (var b in blocks.OfType<JsonObject>())
        {
            if (b["inserted"] is not JsonObject inserted || inserted["image"] is not JsonObject image)
            {
                continue;
            }
            var backing = (image["backing-image"] as JsonObject)?["filename"]?.GetValue<string>();
            result.Add(new CommitTarget(b["device"]?.GetValue<string>() ?? "", b["qdev"]?.GetValue<string>() ?? "",
                image["filename"]?.GetValue<string>() ?? inserted["file"]?.GetValue<string>() ?? "", string.IsNullOrEmpty(backing) ? null : backing));
        }
        return result;
    }

    // ---------------------------------------------------------------- commit, stream, mirror

    /// <summary>
    /// Starts <c>block-commit</c> on a disk. <paramref name="top"/> and <paramref name="base"/> name layers by node
    /// name, full path or file name; a null top is the active layer (an active commit, which goes READY and
    /// waits for <see cref="BlockJob.CompleteAsync"/> to pivot or <see cref="BlockJob.CancelAsync"/> to keep the
    /// overlay), a null base is the bottom of the chain.
    /// </summary>
    public async Task<BlockJob> StartCommitAsync(string disk, string? top = null, string? @base = null, BlockCommitOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new BlockCommitOptions();
        var chain = await QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        var topLayer = top is null ? chain.Active : chain.Find(top) ?? throw new UnknownBlockNodeException(top, $"in the chain of {disk} ({chain.ToText()})");
        var baseLayer = @base is null ? chain.Base : chain.Find(@base) ?? throw new UnknownBlockNodeException(@base, $"in the chain of {disk} ({chain.ToText()})");
        // The base is the image a commit writes: the bottom of the chain is often the cached guest image or a
        // researcher's own disk, so an implicit base must be an image the lab made.
        Host.LabFiles.EnsureMayModify(baseLayer.Filename, $"commit {disk} into {baseLayer.Filename} (the chain's base, not named by the caller)", namedByCaller: @base is not null);
        var topDepth = chain.DepthOf(topLayer);
        var baseDepth = chain.DepthOf(baseLayer);
        if (topDepth == baseDepth)
        {
            throw new InvalidCommitRangeException(topLayer.Name, baseLayer.Name, "top and base are the same layer");
        }
        if (baseDepth < topDepth)
        {
            throw new InvalidCommitRangeException(topLayer.Name, baseLayer.Name, "the base is above the top in the chain");
        }
        var id = options.JobId ?? NextId("commit-");
        var args = new JsonObject
        {
            ["job-id"] = id,
            ["device"] = chain.Active.NodeName,
            ["top-node"] = topLayer.NodeName,
            ["base-node"] = baseLayer.NodeName,
            ["auto-dismiss"] = false,
            ["auto-finalize"] = options.AutoFinalize,
        };
        Optional(args, "speed", options.Speed);
        Optional(args, "backing-file", options.BackingFile);
        Optional(args, "on-error", options.OnError is { } oe ? Policy(oe) : null);
        return await StartJobAsync(id, "commit", "block-commit", args,
            new BlockJobOptions { AutoFinalize = options.AutoFinalize, OnReady = options.OnReady },
            $"commit {disk}: {topLayer.Name} into {baseLayer.Name}", cancellationToken, disk).ConfigureAwait(false);
    }

    /// <summary>
    /// Commits and waits: an intermediate commit to its conclusion, an active commit to READY then
    /// <c>job-complete</c> (pivot to the base). Returns the new chain.
    /// </summary>
    public async Task<LiveChain> CommitAsync(string disk, string? top = null, string? @base = null, BlockCommitOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new BlockCommitOptions();
        await using var job = await StartCommitAsync(disk, top, @base, options with { OnReady = options.OnReady == ReadyAction.Wait ? ReadyAction.Complete : options.OnReady }, cancellationToken).ConfigureAwait(false);
        await job.WaitAsync(JobTimeout, cancellationToken).ConfigureAwait(false);
        return await QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Starts <c>block-stream</c>: copies data from the backing layers into the active layer; with a
    /// <paramref name="base"/>, only the layers above it (the base stays as the new backing file).
    /// </summary>
    public async Task<BlockJob> StartStreamAsync(string disk, string? @base = null, BlockStreamOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new BlockStreamOptions();
        var chain = await QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        var id = options.JobId ?? NextId("stream-");
        var args = new JsonObject
        {
            ["job-id"] = id,
            ["device"] = chain.Active.NodeName,
            ["auto-dismiss"] = false,
            ["auto-finalize"] = options.AutoFinalize,
        };
        if (@base is not null)
        {
            var baseLayer = chain.Find(@base) ?? throw new UnknownBlockNodeException(@base, $"in the chain of {disk} ({chain.ToText()})");
            if (baseLayer == chain.Active)
            {
                throw new BlockOperationException($"cannot stream {disk} down to its active layer {baseLayer.Name}");
            }
            args["base-node"] = baseLayer.NodeName;
        }
        Optional(args, "speed", options.Speed);
        Optional(args, "on-error", options.OnError is { } oe ? Policy(oe) : null);
        return await StartJobAsync(id, "stream", "block-stream", args, new BlockJobOptions { AutoFinalize = options.AutoFinalize },
            $"stream {disk}" + (@base is null ? " (full)" : $" down to {@base}"), cancellationToken, disk).ConfigureAwait(false);
    }

    /// <summary>Streams and waits for the job; returns the new chain.</summary>
    public async Task<LiveChain> StreamAsync(string disk, string? @base = null, BlockStreamOptions? options = null, CancellationToken cancellationToken = default)
    {
        await using var job = await StartStreamAsync(disk, @base, options, cancellationToken).ConfigureAwait(false);
        await job.WaitAsync(JobTimeout, cancellationToken).ConfigureAwait(false);
        return await QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Starts a mirror of a disk: <c>drive-mirror</c> for a file target (new: <c>mode=absolute-paths</c>, refused
    /// when the file exists; existing: <c>mode=existing</c>), <c>blockdev-mirror</c> for a node target. The job goes
    /// READY once the target is in sync; then <see cref="BlockJob.CompleteAsync"/> pivots the disk to the target
    /// and <see cref="BlockJob.CancelAsync"/> leaves the source active with the target a consistent copy.
    /// </summary>
    public async Task<BlockJob> StartMirrorAsync(string disk, MirrorTarget target, MirrorOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        options ??= new MirrorOptions();
        var chain = await QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        var id = options.JobId ?? NextId("mirror-");
        var args = new JsonObject
        {
            ["job-id"] = id,
            ["device"] = chain.Active.NodeName,
            ["sync"] = options.Sync.ToString().ToLowerInvariant(),
            ["auto-dismiss"] = false,
            ["auto-finalize"] = options.AutoFinalize,
        };
        string command;
        string describe;
        switch (target)
        {
            case MirrorTarget.NewFile nf:
                var path = Path.GetFullPath(nf.Path);
                if (File.Exists(path))
                {
                    throw new OverlayExistsException(path);
                }
                command = "drive-mirror";
                args["target"] = path;
                args["format"] = nf.Format;
                args["mode"] = "absolute-paths";
                Host.LabFiles.MarkCreated(path);
                describe = $"mirror {disk} -> new {path}";
                break;
            case MirrorTarget.ExistingFile ef:
                var existing = Path.GetFullPath(ef.Path);
                if (!File.Exists(existing))
                {
                    throw new OverlayMissingException(existing, "existing mirror target");
                }
                command = "drive-mirror";
                args["target"] = existing;
                args["format"] = ef.Format;
                args["mode"] = "existing";
                describe = $"mirror {disk} -> existing {existing}";
                break;
            case MirrorTarget.Node n:
                command = "blockdev-mirror";
                args["target"] = n.NodeName;
                describe = $"mirror {disk} -> node {n.NodeName}";
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(target));
        }
        Optional(args, "granularity", options.Granularity);
        Optional(args, "buf-size", options.BufferSize);
        Optional(args, "speed", options.Speed);
        Optional(args, "on-source-error", options.OnSourceError is { } se ? Policy(se) : null);
        Optional(args, "on-target-error", options.OnTargetError is { } te ? Policy(te) : null);
        return await StartJobAsync(id, "mirror", command, args, new BlockJobOptions { AutoFinalize = options.AutoFinalize, OnReady = options.OnReady },
            describe + $" sync={options.Sync.ToString().ToLowerInvariant()}", cancellationToken, disk).ConfigureAwait(false);
    }

    /// <summary>Sets an optional QMP argument only when it has a value (QEMU's defaults apply otherwise).</summary>
    private static void Optional(JsonObject args, string name, JsonNode? value)
    {
        if (value is not null)
        {
            args[name] = value;
        }
    }

    /// <summary>Lists the jobs QEMU knows about: <c>query-jobs</c> (id, type, status, progress, error).</summary>
    public async Task<IReadOnlyList<JsonObject>> QueryJobsAsync(CancellationToken cancellationToken = default) =>
        (await Qmp.ExecuteAsync("query-jobs", cancellationToken: cancellationToken).ConfigureAwait(false) as JsonArray ?? []).OfType<JsonObject>().ToArray();

    internal async Task<BlockJob> StartJobAsync(string id, string type, string command, JsonObject args, BlockJobOptions jobOptions, string describe, CancellationToken cancellationToken, string? disk = null)
    {
        // A job may change the chain (commit, stream, pivot): forget the remembered view.
        if (disk is null)
        {
            View.Clear();
        }
        else
        {
            View.TryRemove(disk, out _);
        }
        var entry = LabJournal.Current.Begin("block", describe);
        try
        {
            var job = await BlockJob.StartAsync(Qmp, id, type, command, args, jobOptions, cancellationToken: cancellationToken).ConfigureAwait(false);
            entry.Complete($"job {id} started");
            var view = View;
            _ = job.Completion.ContinueWith(_ =>
            {
                if (disk is null)
                {
                    view.Clear();
                }
                else
                {
                    view.TryRemove(disk, out LiveChain? _);
                }
            }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            return job;
        }
        catch (QmpErrorException e)
        {
            entry.Fail(e.Message);
            throw Translate(e);
        }
    }

    // ---------------------------------------------------------------- helpers

    internal static string DeviceId(string disk) => disk + "-dev";

    internal static string Policy(BlockErrorPolicy p) => p.ToString().ToLowerInvariant();

    internal async Task<JsonNode?> ExecuteTranslatedAsync(string command, JsonObject args, CancellationToken cancellationToken)
    {
        try
        {
            return await Qmp.ExecuteAsync(command, args, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (QmpErrorException e)
        {
            throw Translate(e);
        }
    }

    /// <summary>Turns QEMU's "no such node/device" errors into <see cref="UnknownBlockNodeException"/> (<see cref="QmpErrorTranslation"/>).</summary>
    internal static Exception Translate(Exception e) => QmpErrorTranslation.Translate(e);

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

    internal static IReadOnlyList<InternalSnapshot> ParseSnapshots(JsonObject? image)
    {
        if (image is null)
        {
            return [];
        }
        using var doc = JsonDocument.Parse(image.ToJsonString());
        return ImageInfo.FromJson(doc.RootElement).Snapshots;
    }

    // ---------------------------------------------------------------- the backend-neutral view (ILabBlock)

    string ILabBlock.Backend => "qemu";

    Task<LiveChain> ILabBlock.SnapshotAsync(string disk, string overlayFile, CancellationToken cancellationToken) =>
        SnapshotAsync(disk, overlayFile, cancellationToken: cancellationToken);

    Task<LiveChain> ILabBlock.CommitAsync(string disk, string top, string @base, CancellationToken cancellationToken) =>
        CommitAsync(disk, top, @base, cancellationToken: cancellationToken);

    Task<LiveChain> ILabBlock.StreamAsync(string disk, string? @base, CancellationToken cancellationToken) =>
        StreamAsync(disk, @base, cancellationToken: cancellationToken);
}

/// <summary>Reaches a machine's block layer: <c>machine.Block()</c>.</summary>
public static class BlockLayerExtensions
{
    /// <summary>The block layer of a running machine (a light wrapper over its QMP connection).</summary>
    public static BlockLayer Block(this QemuMachine machine)
    {
        ArgumentNullException.ThrowIfNull(machine);
        return new BlockLayer(machine.Qmp, machine);
    }
}
