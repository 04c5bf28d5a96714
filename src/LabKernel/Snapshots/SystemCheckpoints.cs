using System.Diagnostics;
using System.Text.Json.Nodes;
using LabKernel.Block;
using LabKernel.Host;
using LabKernel.Images;
using LabKernel.Journal;
using LabKernel.Machines;
using LabKernel.Processes;
using LabKernel.Qmp;

namespace LabKernel.Snapshots;

/// <summary>A system checkpoint: the guest's memory in a file and each disk's state frozen in a backing layer.</summary>
/// <param name="MemoryFile">The migration stream (VM state).</param>
/// <param name="DiskLayers">Per disk: the layer that holds the disk as it was at the checkpoint (now read-only backing).</param>
/// <param name="Overlays">Per disk: the overlay the running machine continued on.</param>
/// <param name="Paused">How long the guest was paused (from <c>stop</c> to <c>cont</c>).</param>
/// <param name="MemoryBytes">Size of the memory file.</param>
public sealed record SystemCheckpoint(
    string MemoryFile,
    IReadOnlyDictionary<string, string> DiskLayers,
    IReadOnlyDictionary<string, string> Overlays,
    TimeSpan Paused,
    long MemoryBytes);

/// <summary>A machine started again from a checkpoint.</summary>
/// <param name="Machine">The new QEMU (running).</param>
/// <param name="Overlays">Per disk: the fresh overlay on the checkpoint layer it runs on.</param>
/// <param name="LoadTime">From starting QEMU to the guest running again.</param>
public sealed record CheckpointRestore(QemuMachine Machine, IReadOnlyDictionary<string, string> Overlays, TimeSpan LoadTime);

/// <summary>
/// Memory + disk checkpoints with QEMU 7.2's tools: <c>stop</c>, an external snapshot of every disk (the old
/// layers freeze), <c>migrate</c> to <c>exec:cat &gt; FILE</c>, <c>cont</c>. Restore starts a new QEMU with
/// <c>-incoming defer</c> on fresh overlays over the frozen layers and <c>migrate-incoming exec:cat &lt; FILE</c>.
/// </summary>
public static class SystemCheckpoints
{
    /// <summary>
    /// Takes a checkpoint of a running machine. <paramref name="overlays"/> maps each disk to the new overlay the
    /// machine continues on (must not exist). The guest is paused from <c>stop</c> to <c>cont</c>; that time is
    /// returned in <see cref="SystemCheckpoint.Paused"/>.
    /// </summary>
    public static async Task<SystemCheckpoint> CheckpointAsync(this BlockLayer block, string memoryFile, IReadOnlyDictionary<string, string> overlays, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentNullException.ThrowIfNull(overlays);
        memoryFile = Path.GetFullPath(memoryFile);
        if (File.Exists(memoryFile))
        {
            throw new OverlayExistsException(memoryFile);
        }
        foreach (var o in overlays.Values)
        {
            if (File.Exists(o))
            {
                throw new OverlayExistsException(Path.GetFullPath(o));
            }
        }
        var limit = timeout ?? TimeSpan.FromMinutes(5);
        var entry = LabJournal.Current.Begin("block", $"checkpoint memory -> {memoryFile}, disks {string.Join(", ", overlays.Select(kv => $"{kv.Key} -> {kv.Value}"))}");
        var frozen = new Dictionary<string, string>();
        foreach (var disk in overlays.Keys)
        {
            frozen[disk] = (await block.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false)).Active.Filename;
        }
        await EnableMigrationEventsAsync(block.Qmp, cancellationToken).ConfigureAwait(false);
        var wasRunning = await IsRunningAsync(block.Qmp, cancellationToken).ConfigureAwait(false);
        using var migration = block.Qmp.Listen("MIGRATION");
        var paused = Stopwatch.StartNew();
        try
        {
            await block.Qmp.ExecuteAsync("stop", cancellationToken: cancellationToken).ConfigureAwait(false);
            await block.SnapshotAsync(overlays.Select(kv => new ExternalSnapshotRequest(kv.Key, kv.Value)).ToList(), cancellationToken: cancellationToken).ConfigureAwait(false);
            await block.Qmp.ExecuteAsync("migrate", QmpJson.Args(new MigrateArguments("exec:cat > " + ShellQuote.Quote(memoryFile))), cancellationToken: cancellationToken).ConfigureAwait(false);
            await WaitMigrationAsync(migration, limit, "the checkpoint's migration to finish", cancellationToken).ConfigureAwait(false);
            await WaitSourceSettledAsync(block.Qmp, limit, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (wasRunning && block.Qmp.IsConnected)
            {
                await block.Qmp.ExecuteAsync("cont", cancellationToken: CancellationToken.None).ConfigureAwait(false);
            }
            paused.Stop();
        }
        var cp = new SystemCheckpoint(memoryFile, frozen, overlays.ToDictionary(kv => kv.Key, kv => Path.GetFullPath(kv.Value)), paused.Elapsed, new FileInfo(memoryFile).Length);
        entry.Complete($"paused {paused.Elapsed.TotalMilliseconds:0} ms, memory {SizeText.Format(cp.MemoryBytes)}");
        return cp;
    }

    /// <summary>
    /// Starts a new QEMU from a checkpoint: a fresh overlay per disk on the checkpoint's frozen layer
    /// (<paramref name="newOverlays"/>, must not exist), the same machine options with <c>-incoming defer</c>,
    /// <c>migrate-incoming</c> from the memory file, then <c>cont</c> (and the guest agent, if configured).
    /// </summary>
    public static async Task<CheckpointRestore> RestoreAsync(SystemCheckpoint checkpoint, MachineOptions options, IReadOnlyDictionary<string, string> newOverlays, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(newOverlays);
        if (!File.Exists(checkpoint.MemoryFile))
        {
            throw new OverlayMissingException(checkpoint.MemoryFile, "checkpoint memory file");
        }
        var limit = timeout ?? TimeSpan.FromMinutes(5);
        var entry = LabJournal.Current.Begin("block", $"restore checkpoint {checkpoint.MemoryFile}");
        var drives = new List<DriveSpec>();
        var made = new Dictionary<string, string>();
        foreach (var d in options.Drives)
        {
            if (checkpoint.DiskLayers.TryGetValue(d.NodeName, out var layer))
            {
                var overlay = Path.GetFullPath(newOverlays.TryGetValue(d.NodeName, out var o) ? o : throw new LabUsageException($"no new overlay named for disk {d.NodeName}"));
                if (File.Exists(overlay))
                {
                    throw new OverlayExistsException(overlay);
                }
                if (!File.Exists(layer))
                {
                    throw new OverlayMissingException(layer, "checkpoint disk layer");
                }
                await QemuImg.Local.CreateAsync(overlay, "qcow2", null, new CreateOptions { BackingFile = layer, BackingFormat = "qcow2" }, cancellationToken).ConfigureAwait(false);
                made[d.NodeName] = overlay;
                drives.Add(d with { File = overlay });
            }
            else
            {
                drives.Add(d);
            }
        }
        var sw = Stopwatch.StartNew();
        var machine = await QemuMachine.StartAsync(options with
        {
            Drives = drives,
            StartPaused = true,
            ExtraArguments = [.. options.ExtraArguments, "-incoming", "defer"],
        }, cancellationToken).ConfigureAwait(false);
        try
        {
            await EnableMigrationEventsAsync(machine.Qmp, cancellationToken).ConfigureAwait(false);
            using var migration = machine.Qmp.Listen("MIGRATION");
            await machine.Qmp.ExecuteAsync("migrate-incoming", QmpJson.Args(new MigrateArguments("exec:cat < " + ShellQuote.Quote(checkpoint.MemoryFile))), cancellationToken: cancellationToken).ConfigureAwait(false);
            await WaitMigrationAsync(migration, limit, "the checkpoint's memory to load", cancellationToken).ConfigureAwait(false);
            await machine.Qmp.ExecuteAsync("cont", cancellationToken: cancellationToken).ConfigureAwait(false);
            if (options.GuestAgent)
            {
                await machine.WaitForAgentAsync(options.AgentTimeout, cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            await machine.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        entry.Complete($"running after {sw.Elapsed.TotalMilliseconds:0} ms");
        return new CheckpointRestore(machine, made, sw.Elapsed);
    }

    internal static async Task EnableMigrationEventsAsync(QmpClient qmp, CancellationToken cancellationToken) =>
        await qmp.ExecuteAsync("migrate-set-capabilities",
            QmpJson.Args(new MigrateSetCapabilitiesArguments([new MigrationCapabilityState("events", State: true)])),
            cancellationToken: cancellationToken).ConfigureAwait(false);

    private static async Task<bool> IsRunningAsync(QmpClient qmp, CancellationToken cancellationToken) =>
        (await qmp.ExecuteAsync("query-status", cancellationToken: cancellationToken).ConfigureAwait(false))?["running"]?.GetValue<bool>() == true;

    /// <summary>
    /// On the source of an outgoing migration, after its "completed" event: waits until QEMU has left the
    /// <c>finish-migrate</c> run state. QEMU emits the event before the migration thread moves the run state on
    /// (to <c>postmigrate</c>), and a <c>cont</c> in between fails "Migration is not finalized yet" (seen here, 7.2).
    /// </summary>
    internal static Task WaitSourceSettledAsync(QmpClient qmp, TimeSpan limit, CancellationToken cancellationToken) =>
        Poll.UntilAsync(async ct =>
        {
            var status = (await qmp.ExecuteAsync("query-status", cancellationToken: ct).ConfigureAwait(false))?["status"]?.GetValue<string>() ?? "";
            return (status != "finish-migrate", $"run state {status}");
        }, "QEMU to leave the finish-migrate run state after the migration completed", limit,
            new Backoff(TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(50)), cancellationToken: cancellationToken);

    internal static async Task WaitMigrationAsync(QmpEventListener migration, TimeSpan limit, string awaited, CancellationToken cancellationToken)
    {
        var e = await migration.WaitAsync(x => x.GetString("status") is "completed" or "failed" or "cancelled", limit, awaited, cancellationToken).ConfigureAwait(false);
        if (e.GetString("status") != "completed")
        {
            throw new BlockOperationException($"migration {e.GetString("status")} while waiting for {awaited}");
        }
    }

    /// <summary><c>migrate-set-capabilities</c>'s arguments: the capabilities to switch, each on or off.</summary>
    private sealed record MigrateSetCapabilitiesArguments(IReadOnlyList<MigrationCapabilityState> Capabilities);

    /// <summary>
    /// One migration capability and its state. The lab switches on <c>events</c> only, so that the end of a
    /// migration arrives as a <c>MIGRATION</c> event instead of being polled for.
    /// </summary>
    private sealed record MigrationCapabilityState(string Capability, bool State);
}
