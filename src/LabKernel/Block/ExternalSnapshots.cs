using System.Globalization;
using LabKernel.Images;
using LabKernel.Journal;
using LabKernel.Qmp;

namespace LabKernel.Block;

/// <summary>
/// Live external disk-only snapshots: one QMP <c>transaction</c> of <c>blockdev-snapshot-sync</c> actions (or
/// <c>qemu-img create</c> + <c>blockdev-add</c> + <c>blockdev-snapshot</c>) over the disks' active nodes, taken
/// from the connection's remembered chains when it has them all.
/// </summary>
internal sealed class ExternalSnapshots(BlockLayer block)
{
    private static long _nodes;

    /// <summary>See <see cref="BlockLayer.SnapshotAsync(IReadOnlyList{ExternalSnapshotRequest}, SnapshotMethod, CancellationToken)"/>.</summary>
    public async Task<IReadOnlyList<LiveChain>> SnapshotAsync(IReadOnlyList<ExternalSnapshotRequest> disks, SnapshotMethod method, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(disks);
        if (disks.Count == 0)
        {
            throw new LabUsageException("a snapshot needs at least one disk");
        }
        var entry = LabJournal.Current.Begin("block", "snapshot " + string.Join(", ", disks.Select(d => $"{d.Disk} -> {d.OverlayFile}")));
        try
        {
            var files = OverlayFiles(disks);
            var nodes = disks.Select(d => d.OverlayNodeName ?? NextNodeName(d.Disk)).ToList();
            var chains = method == SnapshotMethod.SnapshotSync ? Remembered(disks) : null;
            var fromView = chains is not null;
            chains ??= await LookUpAsync(disks, cancellationToken).ConfigureAwait(false);
            try
            {
                await RunTransactionAsync(chains, files, nodes, method, cancellationToken).ConfigureAwait(false);
            }
            catch (QmpErrorException) when (fromView)
            {
                // The remembered chain may be stale (someone else changed the disk): look it up and retry once.
                chains = await LookUpAsync(disks, cancellationToken).ConfigureAwait(false);
                try
                {
                    await RunTransactionAsync(chains, files, nodes, method, cancellationToken).ConfigureAwait(false);
                }
                catch (QmpErrorException e)
                {
                    throw QmpErrorTranslation.Translate(e);
                }
            }
            catch (QmpErrorException e)
            {
                throw QmpErrorTranslation.Translate(e);
            }

            var result = new List<LiveChain>();
            for (var i = 0; i < disks.Count; i++)
            {
                var old = chains[i];
                var chain = old with { Layers = [new LiveLayer(nodes[i], files[i], "qcow2", old.Active.Filename), .. old.Layers] };
                block.Views.Remember(chain);
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

    /// <summary>The overlays' full paths; refuses one that exists or is named twice, before anything is touched.</summary>
    private static List<string> OverlayFiles(IReadOnlyList<ExternalSnapshotRequest> disks)
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
        return files;
    }

    /// <summary>The remembered chain of every disk, or null when one is missing.</summary>
    private List<LiveChain>? Remembered(IReadOnlyList<ExternalSnapshotRequest> disks)
    {
        var chains = new List<LiveChain>();
        foreach (var d in disks)
        {
            if (!block.Views.TryGet(d.Disk, out var known))
            {
                return null;
            }
            chains.Add(known);
        }
        return chains;
    }

    private async Task<List<LiveChain>> LookUpAsync(IReadOnlyList<ExternalSnapshotRequest> disks, CancellationToken cancellationToken)
    {
        var chains = new List<LiveChain>();
        foreach (var d in disks)
        {
            chains.Add(await block.Chains.QueryChainAsync(d.Disk, cancellationToken).ConfigureAwait(false));
        }
        return chains;
    }

    private async Task RunTransactionAsync(List<LiveChain> chains, List<string> files, List<string> nodes, SnapshotMethod method, CancellationToken cancellationToken)
    {
        var created = new List<string>();
        var added = new List<string>();
        var actions = new List<TransactionAction>();
        try
        {
            for (var i = 0; i < chains.Count; i++)
            {
                var active = chains[i].Active;
                created.Add(files[i]);
                Host.LabFiles.MarkCreated(files[i]);
                if (method == SnapshotMethod.SnapshotSync)
                {
                    actions.Add(new TransactionAction("blockdev-snapshot-sync",
                        new BlockdevSnapshotSyncData(active.NodeName, files[i], nodes[i], Format: "qcow2", Mode: "absolute-paths")));
                }
                else
                {
                    await QemuImg.Local.CreateAsync(files[i], "qcow2", null, new CreateOptions { BackingFile = active.Filename, BackingFormat = active.Format }, cancellationToken).ConfigureAwait(false);
                    await block.Nodes.AddImageNodeAsync(files[i], nodes[i], "qcow2", withBacking: false, inject: null, cancellationToken).ConfigureAwait(false);
                    added.Add(nodes[i]);
                    actions.Add(new TransactionAction("blockdev-snapshot", new BlockdevSnapshotData(active.NodeName, nodes[i])));
                }
            }
            await block.Qmp.ExecuteAsync("transaction", QmpJson.Args(new TransactionArguments(actions)), cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (LabException)
        {
            // Undo what this call created (none of these files existed before); QEMU's transaction is all-or-nothing.
            foreach (var n in added)
            {
                await BlockLayer.TryAsync(() => block.Nodes.RemoveNodeAsync(n, CancellationToken.None)).ConfigureAwait(false);
            }
            foreach (var f in created)
            {
                Host.LabFiles.DeleteIfLabMade(f);
            }
            throw;
        }
    }

    private static string NextNodeName(string disk) =>
        $"{disk}-snap{Interlocked.Increment(ref _nodes).ToString(CultureInfo.InvariantCulture)}";

    /// <summary><c>transaction</c>'s arguments.</summary>
    private sealed record TransactionArguments(IReadOnlyList<TransactionAction> Actions);

    /// <summary>One action of a <c>transaction</c>: its type and its data.</summary>
    private sealed record TransactionAction(string Type, object Data);

    /// <summary>A <c>blockdev-snapshot-sync</c> action: QEMU creates the overlay file.</summary>
    private sealed record BlockdevSnapshotSyncData(string NodeName, string SnapshotFile, string SnapshotNodeName, string Format, string Mode);

    /// <summary>A <c>blockdev-snapshot</c> action: an overlay node already added becomes the top.</summary>
    private sealed record BlockdevSnapshotData(string Node, string Overlay);
}
