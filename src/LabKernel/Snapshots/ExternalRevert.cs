using LabKernel.Block;
using LabKernel.Images;
using LabKernel.Journal;
using LabKernel.Machines;

namespace LabKernel.Snapshots;

/// <summary>The outcome of a revert to an external snapshot.</summary>
/// <param name="Machine">The new QEMU, running on <paramref name="NewOverlay"/>.</param>
/// <param name="NewOverlay">The fresh overlay on the chosen layer.</param>
/// <param name="RevertedTo">The layer the disk was reverted to.</param>
/// <param name="Abandoned">The layers that were above it (kept on disk unless deletion was asked).</param>
/// <param name="AbandonedDeleted">True when <paramref name="Abandoned"/> were deleted.</param>
public sealed record RevertResult(QemuMachine Machine, string NewOverlay, string RevertedTo, IReadOnlyList<string> Abandoned, bool AbandonedDeleted);

/// <summary>
/// Revert to an external snapshot, which libvirt 9.0 cannot do: stop the machine, put a new overlay on the chosen
/// layer of the chain, start a machine on it.
/// </summary>
public static class ExternalRevert
{
    /// <summary>
    /// Shuts <paramref name="machine"/> down (QMP <c>quit</c> or the agent), creates <paramref name="newOverlay"/>
    /// on <paramref name="layer"/> (node name, path or file name of a layer in the disk's live chain), and starts a
    /// new machine with the same options on it. The layers above <paramref name="layer"/> are kept unless
    /// <paramref name="deleteAbandoned"/>. The old machine is disposed.
    /// </summary>
    public static async Task<RevertResult> RevertAsync(QemuMachine machine, string disk, string layer, string newOverlay, bool deleteAbandoned = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(machine);
        var chain = await machine.Block().QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        var target = chain.Find(layer) ?? throw new UnknownBlockNodeException(layer, $"in the chain of {disk} ({chain.ToText()})");
        newOverlay = Path.GetFullPath(newOverlay);
        if (File.Exists(newOverlay))
        {
            throw new OverlayExistsException(newOverlay);
        }
        if (!File.Exists(target.Filename))
        {
            throw new OverlayMissingException(target.Filename, "layer to revert to");
        }
        var abandoned = chain.Layers.Take(chain.DepthOf(target)).Select(l => l.Filename).ToList();
        if (deleteAbandoned)
        {
            // Checked before anything is stopped: deleting is for layers the lab made, never a researcher's.
            foreach (var f in abandoned)
            {
                Host.LabFiles.EnsureMayModify(f, $"delete {f}, a layer above {target.Name} that the revert abandons");
            }
        }
        var entry = LabJournal.Current.Begin("block", $"revert {disk} to {target.Name} via {newOverlay}");
        await machine.ShutdownAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        await machine.DisposeAsync().ConfigureAwait(false);
        await QemuImg.Local.CreateAsync(newOverlay, "qcow2", null, new CreateOptions { BackingFile = target.Filename, BackingFormat = target.Format }, cancellationToken).ConfigureAwait(false);
        if (deleteAbandoned)
        {
            foreach (var f in abandoned)
            {
                Host.LabFiles.DeleteIfLabMade(f);
            }
        }
        var options = machine.Options with
        {
            Drives = machine.Options.Drives.Select(d => d.NodeName == disk ? d with { File = newOverlay } : d).ToList(),
            RuntimeFolder = null,
        };
        var started = await QemuMachine.StartAsync(options, cancellationToken).ConfigureAwait(false);
        entry.Complete($"running on {Path.GetFileName(newOverlay)} over {target.Name}; abandoned {abandoned.Count} layer(s)" + (deleteAbandoned ? " (deleted)" : " (kept)"));
        return new RevertResult(started, newOverlay, target.Filename, abandoned, deleteAbandoned);
    }
}
