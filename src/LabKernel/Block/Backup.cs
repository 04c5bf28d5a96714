using System.Globalization;
using System.Text.Json.Nodes;
using LabKernel.Images;
using LabKernel.Jobs;
using LabKernel.Journal;
using LabKernel.Qmp;

namespace LabKernel.Block;

/// <summary>
/// Incremental backup the way QEMU does it today, over QMP on a running disk: a dirty bitmap on the disk's active
/// node records which clusters the guest writes; <c>blockdev-backup sync=full</c> copies the whole disk into a new
/// qcow2 (starting the bitmap in the same <c>transaction</c>), then each <c>blockdev-backup sync=bitmap</c> copies only
/// the dirty clusters into a new qcow2 whose backing file is the previous backup and clears the bitmap. The chain
/// full &lt;- increment 1 &lt;- ... &lt;- increment k reads as the disk did at backup k.
/// </summary>
/// <remarks>
/// Extension methods on <see cref="BlockLayer"/>, so they work on both backends: the lab's QEMU, and a libvirt
/// domain through its monitor passthrough (<c>ILabGuest.OpenMonitorAsync</c>). Every file made is registered with
/// <see cref="Host.LabFiles"/>; no existing file is ever written. Jobs are driven by their events
/// (<see cref="BlockJob"/>); every wait has a time limit that names what it awaited.
/// </remarks>
public static class Backups
{
    // ---------------------------------------------------------------- dirty bitmaps

    /// <summary>
    /// The named dirty bitmaps on every layer of the disk's chain, active layer first, from
    /// <c>query-named-block-nodes</c> (each node's <c>dirty-bitmaps</c>: name, count, granularity, recording,
    /// persistent, busy). <c>query-block</c> shows only the bitmaps of the device's root node; a bitmap left on a
    /// lower layer by a snapshot shows here too.
    /// </summary>
    public static async Task<IReadOnlyList<DirtyBitmap>> QueryBitmapsAsync(this BlockLayer block, string disk, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(block);
        var chain = await block.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        var nodes = await NodesAsync(block, cancellationToken).ConfigureAwait(false);
        return chain.Layers.SelectMany(l => BitmapsOf(nodes, l.NodeName)).ToArray();
    }

    /// <summary>
    /// Adds a dirty bitmap to the disk's active node: <c>block-dirty-bitmap-add</c> (<paramref name="persistent"/>:
    /// stored in the qcow2 image when QEMU closes it). It records the guest's writes from now on. Returns it as
    /// QEMU reports it.
    /// </summary>
    public static async Task<DirtyBitmap> AddBitmapAsync(this BlockLayer block, string disk, string name, bool persistent = false, long? granularity = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var entry = LabJournal.Current.Begin("block", $"add dirty bitmap {name} on {disk}" + (persistent ? " (persistent)" : ""));
        try
        {
            var active = (await block.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false)).Active;
            await block.ExecuteTranslatedAsync("block-dirty-bitmap-add", QmpJson.Args(new BitmapAddData(active.NodeName, name, persistent, granularity)), cancellationToken).ConfigureAwait(false);
            var added = BitmapsOf(await NodesAsync(block, cancellationToken).ConfigureAwait(false), active.NodeName).First(b => b.Name == name);
            entry.Complete(added.ToString());
            return added;
        }
        catch (Exception e)
        {
            entry.Fail(e.Message);
            throw;
        }
    }

    /// <summary>
    /// Removes a dirty bitmap from whichever layer of the disk's chain holds it: <c>block-dirty-bitmap-remove</c>
    /// (a persistent one is also deleted from the image). A <see cref="MissingBitmapException"/> when no layer has it.
    /// </summary>
    public static async Task RemoveBitmapAsync(this BlockLayer block, string disk, string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(block);
        var entry = LabJournal.Current.Begin("block", $"remove dirty bitmap {name} from {disk}");
        try
        {
            var chain = await block.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
            var all = await block.QueryBitmapsAsync(disk, cancellationToken).ConfigureAwait(false);
            var bitmap = all.FirstOrDefault(b => b.Name == name)
                ?? throw new MissingBitmapException(disk, chain.Active.NodeName, name, $"no layer of {chain.ToText()} has it ({Listed(all)})");
            await block.ExecuteTranslatedAsync("block-dirty-bitmap-remove", QmpJson.Args(new BitmapData(bitmap.Node, name)), cancellationToken).ConfigureAwait(false);
            entry.Complete($"removed from node {bitmap.Node}");
        }
        catch (Exception e)
        {
            entry.Fail(e.Message);
            throw;
        }
    }

    // ---------------------------------------------------------------- backups

    /// <summary>
    /// A full backup of the disk into the new qcow2 <paramref name="targetFile"/>: <c>qemu-img create</c> the target,
    /// <c>blockdev-add</c> it, then one <c>transaction</c> of <c>blockdev-backup sync=full</c> with, when
    /// <see cref="BackupOptions.Bitmap"/> is set, <c>block-dirty-bitmap-add</c> (or <c>-clear</c> when the disk
    /// has it), so the bitmap starts recording exactly at the backup point; with
    /// <see cref="BackupOptions.SnapshotOverlay"/> also <c>blockdev-snapshot-sync</c>. Waits for the job, closes
    /// the target node, and returns what was copied. The backup holds the disk as it was when the transaction ran.
    /// </summary>
    public static Task<BackupResult> FullBackupAsync(this BlockLayer block, string disk, string targetFile, BackupOptions? options = null, CancellationToken cancellationToken = default) =>
        RunAsync(block, disk, BackupKind.Full, targetFile, [], options ?? new BackupOptions(), cancellationToken);

    /// <summary>
    /// An incremental backup on top of <paramref name="previous"/> (a full backup or an earlier increment): the new
    /// qcow2 <paramref name="targetFile"/> is created with <paramref name="previous"/>'s target as its backing file,
    /// and <c>blockdev-backup sync=bitmap bitmap-mode=on-success</c> (the same as <c>sync=incremental</c>) copies
    /// only the clusters <see cref="BackupOptions.Bitmap"/> marks dirty, then clears it. The bitmap must be on the
    /// disk's active node (a <see cref="MissingBitmapException"/> otherwise, before anything is sent or made).
    /// </summary>
    public static Task<BackupResult> IncrementalBackupAsync(this BlockLayer block, string disk, string targetFile, BackupResult previous, BackupOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(previous);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Bitmap is null)
        {
            throw new LabUsageException("an incremental backup copies what a dirty bitmap recorded: set BackupOptions.Bitmap (the one the full backup started)");
        }
        return RunAsync(block, disk, BackupKind.Incremental, targetFile, previous.Chain, options, cancellationToken);
    }

    /// <summary>
    /// Restores a backup point into a new standalone qcow2 <paramref name="file"/>: <c>qemu-img convert -O qcow2</c>
    /// of the backup's chain (full backup and every increment up to <paramref name="backup"/>). The backups are
    /// only read. Returns the file. On another <paramref name="host"/> (this machine when null) the backups are read and
    /// the file is made there.
    /// </summary>
    public static async Task<string> RestoreAsync(BackupResult backup, string file, CancellationToken cancellationToken = default, Host.ILabHost? host = null)
    {
        ArgumentNullException.ThrowIfNull(backup);
        host ??= Host.LocalHost.Instance;
        var path = Path.GetFullPath(file);
        if (await host.FileExistsAsync(path, cancellationToken).ConfigureAwait(false) || await host.DirectoryExistsAsync(path, cancellationToken).ConfigureAwait(false))
        {
            throw new OverlayExistsException(path);
        }
        var entry = LabJournal.Current.Begin("block", $"restore {string.Join(" <- ", backup.Chain.Select(Path.GetFileName))} into {path}");
        try
        {
            Host.LabFiles.MarkCreated(path, host);
            await QemuImg.On(host).ConvertAsync(backup.Target, path, "qcow2", new ConvertOptions { ForceShare = true }, cancellationToken).ConfigureAwait(false);
            entry.Complete("done");
            return path;
        }
        catch (Exception e)
        {
            entry.Fail(e.Message);
            throw;
        }
    }

    private static async Task<BackupResult> RunAsync(BlockLayer block, string disk, BackupKind kind, string targetFile, IReadOnlyList<string> previousChain, BackupOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentException.ThrowIfNullOrEmpty(targetFile);
        var target = Path.GetFullPath(targetFile);
        var overlay = options.SnapshotOverlay is { } o ? Path.GetFullPath(o) : null;
        foreach (var f in new[] { target, overlay }.OfType<string>())
        {
            if (await block.Host.FileExistsAsync(f, cancellationToken).ConfigureAwait(false) || await block.Host.DirectoryExistsAsync(f, cancellationToken).ConfigureAwait(false))
            {
                throw new OverlayExistsException(f);
            }
        }
        if (overlay == target)
        {
            throw new LabUsageException($"the backup target and the snapshot overlay are the same file {target}");
        }
        var previous = kind == BackupKind.Incremental ? previousChain[^1] : null;
        var describe = kind == BackupKind.Full
            ? $"full backup {disk} -> {target}" + (options.Bitmap is { } b ? $", starting bitmap {b}" : "")
            : $"incremental backup {disk} -> {target} (backing {Path.GetFileName(previous)}, bitmap {options.Bitmap})";
        if (overlay is not null)
        {
            describe += $", snapshot onto {overlay}";
        }
        var entry = LabJournal.Current.Begin("block", describe);
        try
        {
            var result = await BackupAsync(block, disk, kind, target, overlay, previousChain, options, cancellationToken).ConfigureAwait(false);
            entry.Complete(result.ToString());
            return result;
        }
        catch (Exception e)
        {
            entry.Fail(e.Message);
            throw;
        }
    }

    private static async Task<BackupResult> BackupAsync(BlockLayer block, string disk, BackupKind kind, string target, string? overlay, IReadOnlyList<string> previousChain, BackupOptions options, CancellationToken cancellationToken)
    {
        var chain = await block.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        var active = chain.Active;
        var nodes = await NodesAsync(block, cancellationToken).ConfigureAwait(false);
        var onActive = BitmapsOf(nodes, active.NodeName);
        var existing = options.Bitmap is { } name ? onActive.FirstOrDefault(b => b.Name == name) : null;
        string? previous = null;
        if (kind == BackupKind.Incremental)
        {
            if (existing is null)
            {
                var elsewhere = chain.Layers.Skip(1).SelectMany(l => BitmapsOf(nodes, l.NodeName)).FirstOrDefault(b => b.Name == options.Bitmap);
                throw new MissingBitmapException(disk, active.NodeName, options.Bitmap!, elsewhere is not null
                    ? $"its active layer (node {active.NodeName}) has none; the bitmap is on the lower layer {elsewhere.Node}, where an external snapshot left it (take snapshots with BackupOptions.SnapshotOverlay so the bitmap moves along, or start again with a full backup)"
                    : $"its active layer (node {active.NodeName}) has {Listed(onActive)}; a full backup with BackupOptions.Bitmap starts one");
            }
            if (existing.Busy)
            {
                throw new BlockOperationException($"dirty bitmap '{existing.Name}' on {disk} is busy (another job is using it)");
            }
            previous = previousChain[^1];
            if (!await block.Host.FileExistsAsync(previous, cancellationToken).ConfigureAwait(false))
            {
                throw new OverlayMissingException(previous, "previous backup");
            }
        }
        var size = VirtualSize(nodes, active.NodeName)
            ?? (await block.QemuImg.InfoAsync(active.Filename, forceShare: true, cancellationToken: cancellationToken).ConfigureAwait(false)).VirtualSize;

        await block.QemuImg.CreateAsync(target, "qcow2", kind == BackupKind.Full ? size : null,
            kind == BackupKind.Full ? null : new CreateOptions { BackingFile = previous, BackingFormat = "qcow2" }, cancellationToken).ConfigureAwait(false);
        var targetNode = BlockJob.NewId("backup-target-");
        var snapNode = overlay is null ? null : BlockJob.NewId($"{disk}-backup-snap");
        var jobId = BlockJob.NewId("backup-");
        var nodeAdded = false;
        var started = false;
        try
        {
            // An increment's target is opened over its backing chain: a write of less than a cluster then copies
            // the rest of the cluster from the previous backups, not zeroes.
            await block.AddImageNodeAsync(target, targetNode, withBacking: kind == BackupKind.Incremental, cancellationToken: cancellationToken).ConfigureAwait(false);
            nodeAdded = true;

            var actions = new List<TransactionAction>();
            if (overlay is not null)
            {
                // The snapshot goes first: the backup then reads the frozen layer, which nobody writes any more, and
                // the bitmap is re-created empty on the new overlay at the same instant.
                Host.LabFiles.MarkCreated(overlay, block.Host);
                actions.Add(new("blockdev-snapshot-sync", new SnapshotSyncData(active.NodeName, overlay, snapNode!, "qcow2", "absolute-paths")));
            }
            else if (kind == BackupKind.Full && options.Bitmap is { } start)
            {
                actions.Add(existing is null
                    ? new("block-dirty-bitmap-add", new BitmapAddData(active.NodeName, start, options.PersistentBitmap, options.Granularity))
                    : new("block-dirty-bitmap-clear", new BitmapData(active.NodeName, start)));
            }
            actions.Add(new("blockdev-backup", new BackupData(jobId, active.NodeName, targetNode, kind == BackupKind.Full ? "full" : "bitmap")
            {
                Bitmap = kind == BackupKind.Incremental ? options.Bitmap : null,
                BitmapMode = kind != BackupKind.Incremental ? null : options.BitmapMode switch
                {
                    BitmapMode.Always => "always",
                    BitmapMode.Never => "never",
                    _ => "on-success",
                },
                Speed = options.Speed,
            }));
            if (overlay is not null && options.Bitmap is { } carried)
            {
                actions.Add(new("block-dirty-bitmap-add", new BitmapAddData(snapNode!, carried,
                    existing?.Persistent ?? options.PersistentBitmap, existing?.Granularity ?? options.Granularity)));
            }

            // The transaction may change the chain (the snapshot) and the job holds nodes until it concludes: the
            // connection's remembered chain of the disk is forgotten now and again when the job concludes.
            var views = block.Views;
            views.Forget(disk);
            BlockJob job;
            try
            {
                job = await BlockJob.StartAsync(block.Qmp, jobId, "backup", "transaction", QmpJson.Args(new TransactionArguments(actions)),
                    new BlockJobOptions { Concluding = () => views.Forget(disk), Disk = disk }, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (QmpErrorException e)
            {
                throw QmpErrorTranslation.Translate(e);
            }
            await using var _ = job.ConfigureAwait(false);
            started = true;
            BlockJobResult done;
            var limit = options.Timeout ?? block.JobTimeout;
            try
            {
                done = await job.WaitAsync(limit, cancellationToken).ConfigureAwait(false);
            }
            catch (LabTimeoutException)
            {
                // Stop the job so the target can be closed; the backup is incomplete either way.
                await DrivenJobs.AbandonAsync(job).ConfigureAwait(false);
                throw new LabTimeoutException($"{kind.ToString().ToLowerInvariant()} backup job {jobId} of {disk} into {Path.GetFileName(target)} to conclude", limit);
            }
            await block.RemoveNodeAsync(targetNode, cancellationToken).ConfigureAwait(false);
            nodeAdded = false;
            return new BackupResult(kind, disk, target, [.. previousChain, target], options.Bitmap, done.Offset, done.Length, done.Elapsed,
                overlay, overlay is null ? null : active.Filename);
        }
        catch
        {
            // An unfinished backup is of no use: close and delete the target (the lab made it). An overlay is
            // deleted only if the transaction never ran (QEMU's transaction is all-or-nothing).
            if (nodeAdded)
            {
                await BlockLayer.TryAsync(() => block.RemoveNodeAsync(targetNode, CancellationToken.None)).ConfigureAwait(false);
            }
            await Host.LabFiles.DeleteIfLabMadeAsync(target, block.Host, CancellationToken.None).ConfigureAwait(false);
            if (!started && overlay is not null)
            {
                await Host.LabFiles.DeleteIfLabMadeAsync(overlay, block.Host, CancellationToken.None).ConfigureAwait(false);
            }
            throw;
        }
    }

    // ---------------------------------------------------------------- helpers

    /// <summary><c>transaction</c>'s arguments.</summary>
    private sealed record TransactionArguments(IReadOnlyList<TransactionAction> Actions);

    /// <summary>One action of a <c>transaction</c>: its type and its data.</summary>
    private sealed record TransactionAction(string Type, object Data);

    /// <summary><c>block-dirty-bitmap-add</c>'s arguments (no granularity: the node's cluster size).</summary>
    private sealed record BitmapAddData(string Node, string Name, bool Persistent, long? Granularity);

    /// <summary><c>block-dirty-bitmap-remove</c>'s and <c>-clear</c>'s arguments.</summary>
    private sealed record BitmapData(string Node, string Name);

    /// <summary>A <c>blockdev-snapshot-sync</c> action: QEMU creates the overlay file.</summary>
    private sealed record SnapshotSyncData(string NodeName, string SnapshotFile, string SnapshotNodeName, string Format, string Mode);

    /// <summary><c>blockdev-backup</c>'s arguments (jobs are dismissed by the lab, so <c>auto-dismiss</c> is off).</summary>
    private sealed record BackupData(string JobId, string Device, string Target, string Sync)
    {
        public bool AutoDismiss => false;
        public bool AutoFinalize => true;
        public string? Bitmap { get; init; }
        public string? BitmapMode { get; init; }
        public long? Speed { get; init; }
    }

    /// <summary>
    /// <c>query-named-block-nodes</c>' arguments: <c>flat</c> lists each node once, without its backing chain
    /// repeated inside it, which is all the bitmap lookup needs.
    /// </summary>
    private sealed record NamedBlockNodesArguments(bool Flat);

    private static async Task<IReadOnlyList<JsonObject>> NodesAsync(BlockLayer block, CancellationToken cancellationToken) =>
        (await block.Qmp.ExecuteAsync("query-named-block-nodes", QmpJson.Args(new NamedBlockNodesArguments(Flat: true)), cancellationToken: cancellationToken).ConfigureAwait(false) as JsonArray ?? [])
            .OfType<JsonObject>().ToArray();

    /// <summary>The named bitmaps of one node (QEMU's anonymous ones, such as a running backup's, are left out).</summary>
    private static IReadOnlyList<DirtyBitmap> BitmapsOf(IReadOnlyList<JsonObject> nodes, string node) =>
        (nodes.FirstOrDefault(n => n["node-name"]?.GetValue<string>() == node)?["dirty-bitmaps"] as JsonArray ?? [])
            .OfType<JsonObject>()
            .Where(b => !string.IsNullOrEmpty(b["name"]?.GetValue<string>()))
            .Select(b => new DirtyBitmap(
                node,
                b["name"]!.GetValue<string>(),
                b["count"]?.GetValue<long>() ?? 0,
                b["granularity"]?.GetValue<long>() ?? 0,
                b["recording"]?.GetValue<bool>() ?? false,
                b["persistent"]?.GetValue<bool>() ?? false,
                b["busy"]?.GetValue<bool>() ?? false,
                b["inconsistent"]?.GetValue<bool>() ?? false))
            .ToArray();

    private static long? VirtualSize(IReadOnlyList<JsonObject> nodes, string node) =>
        nodes.FirstOrDefault(n => n["node-name"]?.GetValue<string>() == node)?["image"]?["virtual-size"]?.GetValue<long>();

    private static string Listed(IReadOnlyList<DirtyBitmap> bitmaps) =>
        bitmaps.Count == 0 ? "no bitmaps" : "bitmaps " + string.Join(", ", bitmaps.Select(b => string.Create(CultureInfo.InvariantCulture, $"{b.Name} on {b.Node}")));
}
