using System.Collections.Concurrent;
using LabKernel.Host;
using LabKernel.Images;

namespace LabKernel.Libvirt;

/// <summary>libvirt's domain states (<c>virDomainState</c>).</summary>
public enum DomainState
{
    NoState = 0,
    Running = 1,
    Blocked = 2,
    Paused = 3,
    ShuttingDown = 4,
    ShutOff = 5,
    Crashed = 6,
    PmSuspended = 7,
}

/// <summary>How <see cref="LibvirtDomain.ShutdownAsync"/> asks the guest to power off.</summary>
public enum ShutdownMode
{
    /// <summary><c>virDomainShutdown</c>: the hypervisor's default (ACPI power button for QEMU).</summary>
    Default,

    /// <summary><c>virDomainShutdownFlags(GUEST_AGENT)</c>: <c>guest-shutdown</c> through the agent (the lean guest has no ACPI daemon).</summary>
    GuestAgent,

    /// <summary><c>virDomainShutdownFlags(ACPI_POWER_BTN)</c>.</summary>
    Acpi,
}

/// <summary>
/// A libvirt domain (<c>virDomainPtr</c>). Lifecycle calls here; the block layer, snapshots, the guest agent and the
/// QEMU monitor are grouped in <see cref="Block"/>, <see cref="Snapshots"/>, <see cref="Agent"/> and
/// <see cref="Monitor"/>. Images the lab creates through this object (overlays, copy targets, saved states) are
/// recorded in <see cref="Host.LabFiles"/> on the connection's host (<see cref="LibvirtConnection.GetHostAsync"/>);
/// only those are ever deleted by the lab's clean-up.
/// </summary>
public sealed class LibvirtDomain : IDisposable
{
    private readonly Lock _lookup = new();
    private DomainHandle _current;
    private int _generation;

    internal LibvirtDomain(LibvirtConnection connection, DomainHandle handle, string name)
    {
        Connection = connection;
        _current = handle;
        _generation = connection.Generation;
        Name = name;
        Block = new LibvirtBlock(this);
        Snapshots = new LibvirtSnapshots(this);
        Agent = new LibvirtAgent(this);
        Monitor = new LibvirtMonitor(this);
    }

    public LibvirtConnection Connection { get; }
    public string Name { get; }

    /// <summary>Chains, commit, pull, copy and block jobs.</summary>
    public LibvirtBlock Block { get; }

    /// <summary>External (disk-only, memory) and internal snapshots, the snapshot tree, revert.</summary>
    public LibvirtSnapshots Snapshots { get; }

    /// <summary>The guest agent through <c>virDomainQemuAgentCommand</c> (an <see cref="GuestAgent.IGuestShell"/>).</summary>
    public LibvirtAgent Agent { get; }

    /// <summary>QEMU monitor passthrough (<c>virDomainQemuMonitorCommand</c>, HMP or QMP).</summary>
    public LibvirtMonitor Monitor { get; }


    /// <summary>
    /// The domain's handle on the connection as it is now: after libvirtd restarted and the connection was opened
    /// again (<see cref="LibvirtConnection.Generation"/>), the domain is looked up again by name.
    /// </summary>
    internal DomainHandle Handle
    {
        get
        {
            lock (_lookup)
            {
                var generation = Connection.Generation;
                if (generation != _generation)
                {
                    var fresh = Connection.LookupHandle(Name);
                    _current.Dispose();
                    _current = fresh;
                    _generation = generation;
                }
                return _current;
            }
        }
    }

    internal string What => $"domain '{Name}'";

    /// <summary>
    /// Runs a libvirt call off the caller's thread. When it fails because libvirtd closed the connection (a restart),
    /// the connection is opened again (<see cref="LibvirtConnection.ReconnectAsync"/>) and the call made once more.
    /// </summary>
    internal async Task<T> Run<T>(Func<T> f, CancellationToken cancellationToken)
    {
        try
        {
            return await Task.Run(f, cancellationToken).ConfigureAwait(false);
        }
        catch (LibvirtException e) when (Connection.IsLostConnection(e))
        {
            await Connection.ReconnectAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            return await Task.Run(f, cancellationToken).ConfigureAwait(false);
        }
    }

    internal Task Run(Action f, CancellationToken cancellationToken) => Run(() => { f(); return true; }, cancellationToken);

    // ---------------------------------------------------------------- lifecycle

    /// <summary><c>virDomainCreate</c>: starts the defined domain.</summary>
    public Task StartAsync(CancellationToken cancellationToken = default) =>
        Run(() => LibvirtRuntime.Call("virDomainCreate", What, $"virDomainCreate({Name})", () => LibvirtNative.virDomainCreate(Handle)), cancellationToken);

    /// <summary>
    /// <c>virDomainSave</c> (<c>virsh save</c>): the running guest's memory and device state go to
    /// <paramref name="stateFile"/> (a new file, registered as the lab's) and the domain stops; its disks stay as they
    /// are, so <see cref="RestoreAsync"/> must find them unchanged. Returns how long libvirt took.
    /// </summary>
    public async Task<TimeSpan> SaveAsync(string stateFile, CancellationToken cancellationToken = default)
    {
        stateFile = Path.GetFullPath(stateFile);
        var host = await Connection.GetHostAsync(cancellationToken).ConfigureAwait(false);
        if (await host.FileExistsAsync(stateFile, cancellationToken).ConfigureAwait(false))
        {
            throw new OverlayExistsException(stateFile);
        }
        Host.LabFiles.MarkCreated(stateFile, host);
        var started = Connection.Time.GetTimestamp();
        await Run(() => LibvirtRuntime.Call("virDomainSave", What, $"virDomainSave({Name}, {stateFile})", () => LibvirtNative.virDomainSave(Handle, stateFile)), cancellationToken).ConfigureAwait(false);
        return Connection.Time.GetElapsedTime(started);
    }

    /// <summary>
    /// <c>virDomainRestore</c> (<c>virsh restore</c>): the domain saved in <paramref name="stateFile"/> by
    /// <see cref="SaveAsync"/> runs again from that instant (not booted), then its agent is waited for (libvirt
    /// reconnects the channel). Returns the time from the call to the agent's answer.
    /// </summary>
    public async Task<TimeSpan> RestoreAsync(string stateFile, TimeSpan? agentTimeout = null, CancellationToken cancellationToken = default)
    {
        stateFile = Path.GetFullPath(stateFile);
        if (!Host.LabFiles.IsLabMade(stateFile, await Connection.GetHostAsync(cancellationToken).ConfigureAwait(false)))
        {
            throw new LabUsageException($"{stateFile} is not a state the lab saved for domain '{Name}': only those are restored");
        }
        var started = Connection.Time.GetTimestamp();
        await Run(() => LibvirtRuntime.Call("virDomainRestore", What, $"virDomainRestore({stateFile})", () => LibvirtNative.virDomainRestore(Connection.Handle, stateFile)), cancellationToken).ConfigureAwait(false);
        // libvirt resynchronises the agent channel itself (its commands fail "not connected" until then).
        await WaitForAgentAsync(agentTimeout ?? Machines.GuestDefaults.AgentTimeout, cancellationToken).ConfigureAwait(false);
        return Connection.Time.GetElapsedTime(started);
    }

    /// <summary><c>virDomainSuspend</c> (<c>virsh suspend</c>): pauses the guest's vCPUs; QEMU keeps running.</summary>
    public Task SuspendAsync(CancellationToken cancellationToken = default) =>
        Run(() => LibvirtRuntime.Call("virDomainSuspend", What, $"virDomainSuspend({Name})", () => LibvirtNative.virDomainSuspend(Handle)), cancellationToken);

    /// <summary><c>virDomainResume</c> (<c>virsh resume</c>): runs a paused guest's vCPUs again.</summary>
    public Task ResumeAsync(CancellationToken cancellationToken = default) =>
        Run(() => LibvirtRuntime.Call("virDomainResume", What, $"virDomainResume({Name})", () => LibvirtNative.virDomainResume(Handle)), cancellationToken);

    /// <summary><c>virDomainDestroy</c>: stops QEMU at once (no-op when already shut off).</summary>
    public async Task DestroyAsync(CancellationToken cancellationToken = default)
    {
        if (await GetStateAsync(cancellationToken).ConfigureAwait(false) == DomainState.ShutOff)
        {
            return;
        }
        await Run(() => LibvirtRuntime.Call("virDomainDestroy", What, $"virDomainDestroy({Name})", () => LibvirtNative.virDomainDestroy(Handle)), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>How often a shutdown wait asks the state between lifecycle events (50 ms, doubling, up to 500 ms).</summary>
    private static readonly Backoff ShutdownPolls = new(TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(500));

    /// <summary>
    /// Asks the guest to power off (<c>virDomainShutdown</c> / <c>virDomainShutdownFlags</c>) and waits for the
    /// STOPPED lifecycle event, or the shut-off state, within <paramref name="timeout"/>; a guest that does not
    /// stop gives a <see cref="LabTimeoutException"/> naming the domain.
    /// </summary>
    public async Task ShutdownAsync(TimeSpan timeout, ShutdownMode mode = ShutdownMode.GuestAgent, CancellationToken cancellationToken = default)
    {
        if (await GetStateAsync(cancellationToken).ConfigureAwait(false) == DomainState.ShutOff)
        {
            return;
        }
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sub = Connection.Subscribe(e =>
        {
            if (e is DomainLifecycleEventRecord { Event: DomainLifecycleEvent.Stopped } l && l.Domain == Name)
            {
                stopped.TrySetResult();
            }
        });
        LibvirtException? asking = null;
        try
        {
            await Run(() => mode switch
            {
                ShutdownMode.Default => LibvirtRuntime.Call("virDomainShutdown", What, $"virDomainShutdown({Name})", () => LibvirtNative.virDomainShutdown(Handle)),
                ShutdownMode.Acpi => LibvirtRuntime.Call("virDomainShutdownFlags", What, $"virDomainShutdownFlags({Name}, ACPI_POWER_BTN)", () => LibvirtNative.virDomainShutdownFlags(Handle, Vir.ShutdownAcpi)),
                _ => LibvirtRuntime.Call("virDomainShutdownFlags", What, $"virDomainShutdownFlags({Name}, GUEST_AGENT)", () => LibvirtNative.virDomainShutdownFlags(Handle, Vir.ShutdownGuestAgent)),
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (LibvirtException e) when (mode == ShutdownMode.GuestAgent)
        {
            // A guest that powers off before libvirt reads the agent's end of guest-shutdown makes the call fail
            // ("End of file from agent socket") although the shutdown is under way: the state decides, below.
            asking = e;
        }
        // The STOPPED event ends the wait at once; the state, asked between, covers an event missed (libvirtd restarting).
        await Poll.UntilAsync(async ct =>
        {
            if (stopped.Task.IsCompleted)
            {
                return (true, "");
            }
            var state = await GetStateAsync(ct).ConfigureAwait(false);
            return (state == DomainState.ShutOff, $"state {state}" + (asking is null ? "" : $"; the request failed: {asking.Message}"));
        }, $"domain '{Name}' to shut down ({mode})", timeout, ShutdownPolls, Connection.Time, cancellationToken, wake: stopped.Task).ConfigureAwait(false);
    }

    /// <summary>
    /// <c>virDomainUndefineFlags</c> with SNAPSHOTS_METADATA | CHECKPOINTS_METADATA | MANAGED_SAVE, so a domain
    /// with snapshot metadata can be undefined. Images are not touched.
    /// </summary>
    public Task UndefineAsync(CancellationToken cancellationToken = default) =>
        Run(() => LibvirtRuntime.Call("virDomainUndefineFlags", What, $"virDomainUndefineFlags({Name}, SNAPSHOTS_METADATA|CHECKPOINTS_METADATA|MANAGED_SAVE)",
            () => LibvirtNative.virDomainUndefineFlags(Handle, Vir.UndefineSnapshotsMetadata | Vir.UndefineCheckpointsMetadata | Vir.UndefineManagedSave)), cancellationToken);

    /// <summary><c>virDomainGetState</c>.</summary>
    public Task<DomainState> GetStateAsync(CancellationToken cancellationToken = default) =>
        Run(() =>
        {
            var state = 0;
            LibvirtRuntime.Call("virDomainGetState", What, $"virDomainGetState({Name})", () => LibvirtNative.virDomainGetState(Handle, out state, out _, 0));
            return (DomainState)state;
        }, cancellationToken);

    /// <summary><c>virDomainReboot</c> through the guest agent (the guest runs its own reboot); returns once asked.</summary>
    public Task RequestRebootAsync(CancellationToken cancellationToken = default) =>
        Run(() => LibvirtRuntime.Call("virDomainReboot", What, $"virDomainReboot({Name}, GUEST_AGENT)", () => LibvirtNative.virDomainReboot(Handle, Vir.RebootGuestAgent)), cancellationToken);

    /// <summary>
    /// The pid of the domain's QEMU from libvirt's pid file: only when the lab works on this machine's files for the
    /// connection (a pid on another host, or in another namespace, is not a process here); null when not readable.
    /// </summary>
    public int? QemuProcessId
    {
        get
        {
            if (!LabHosts.FilesAreLocal(Connection.Uri))
            {
                return null;
            }
            try
            {
                var text = File.ReadAllText(Path.Combine("/run/libvirt/qemu", Name + ".pid")).Trim();
                return int.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var pid) ? pid : null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }
        }
    }

    /// <summary><c>virDomainIsPersistent</c>: whether the domain has a definition that outlives a shutdown.</summary>
    public Task<bool> IsPersistentAsync(CancellationToken cancellationToken = default) =>
        Run(() => LibvirtRuntime.Call("virDomainIsPersistent", What, $"virDomainIsPersistent({Name})", () => LibvirtNative.virDomainIsPersistent(Handle)) == 1, cancellationToken);

    /// <summary><c>virDomainGetXMLDesc</c>: the live XML (with the disks' backing chains), or the persistent one with <paramref name="inactive"/>.</summary>
    public Task<string> GetXmlAsync(bool inactive = false, CancellationToken cancellationToken = default) =>
        Run(() => LibvirtRuntime.CallString("virDomainGetXMLDesc", What, $"virDomainGetXMLDesc({Name}, {(inactive ? "INACTIVE" : "0")})",
            () => LibvirtNative.virDomainGetXMLDesc(Handle, inactive ? Vir.DomainXmlInactive : 0)), cancellationToken);

    /// <summary>The disks with their chains, from the live XML (or the persistent one when the domain is off).</summary>
    public async Task<IReadOnlyList<DomainDisk>> ListDisksAsync(bool inactive = false, CancellationToken cancellationToken = default) =>
        DomainXml.ParseDisks(await GetXmlAsync(inactive, cancellationToken).ConfigureAwait(false));

    /// <summary>
    /// Waits until the guest agent answers <c>guest-ping</c> through <c>virDomainQemuAgentCommand</c>, retrying
    /// until <paramref name="timeout"/>; fails at once when the domain stops running.
    /// </summary>
    public Task<TimeSpan> WaitForAgentAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        Agent.WaitUntilReadyAsync(timeout, cancellationToken);

    /// <summary>
    /// <c>virDomainAttachDeviceFlags</c> of a file disk (live and, for a persistent domain, config); with a
    /// <paramref name="serial"/> the guest can find it by (<c>/sys/block/vdX/serial</c>).
    /// </summary>
    public Task AttachDiskAsync(string file, string target, string format = "qcow2", bool live = true, bool config = false, CancellationToken cancellationToken = default, string? serial = null)
    {
        var xml = DomainSpec.DiskElement(Path.GetFullPath(file), target, format, serial).ToString();
        var flags = (live ? Vir.AffectLive : 0) | (config ? Vir.AffectConfig : 0);
        return Run(() => LibvirtRuntime.Call("virDomainAttachDeviceFlags", What, $"virDomainAttachDeviceFlags({Name}, <disk {target} {file}>, {FlagText(live, config)})",
            () => LibvirtNative.virDomainAttachDeviceFlags(Handle, xml, flags)), cancellationToken);
    }

    /// <summary><c>virDomainDetachDeviceFlags</c> of disk <paramref name="target"/> (its element from the domain XML).</summary>
    public async Task DetachDiskAsync(string target, bool live = true, bool config = false, CancellationToken cancellationToken = default)
    {
        var xml = DomainXml.DiskElementOf(await GetXmlAsync(!live, cancellationToken).ConfigureAwait(false), target);
        var flags = (live ? Vir.AffectLive : 0) | (config ? Vir.AffectConfig : 0);
        await Run(() => LibvirtRuntime.Call("virDomainDetachDeviceFlags", What, $"virDomainDetachDeviceFlags({Name}, <disk {target}>, {FlagText(live, config)})",
            () => LibvirtNative.virDomainDetachDeviceFlags(Handle, xml, flags)), cancellationToken).ConfigureAwait(false);
    }

    private static string FlagText(bool live, bool config) => (live, config) switch
    {
        (true, true) => "LIVE|CONFIG",
        (true, false) => "LIVE",
        (false, true) => "CONFIG",
        _ => "CURRENT",
    };

    /// <summary>Redefines the persistent domain with disk <paramref name="target"/> on <paramref name="file"/> (the domain must be shut off or the change applies at next start).</summary>
    public async Task SetPersistentDiskSourceAsync(string target, string file, CancellationToken cancellationToken = default) =>
        await SetPersistentDiskSourceAsync(target, file, null, cancellationToken).ConfigureAwait(false);

    /// <summary>As <see cref="SetPersistentDiskSourceAsync(string, string, CancellationToken)"/>, also setting the disk's driver format (qcow2, raw).</summary>
    public async Task SetPersistentDiskSourceAsync(string target, string file, string? format, CancellationToken cancellationToken = default)
    {
        var xml = DomainXml.WithDiskSource(await GetXmlAsync(inactive: true, cancellationToken).ConfigureAwait(false), target, Path.GetFullPath(file), format);
        using var _ = await Connection.DefineDomainAsync(xml, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Redefines the persistent domain with each listed disk on its new file (and format), in one definition: the
    /// take-over and the hand-back of a user's domain move every disk at once.
    /// </summary>
    public async Task SetPersistentDiskSourcesAsync(IReadOnlyList<(string Target, string File, string? Format)> disks, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(disks);
        if (disks.Count == 0)
        {
            return;
        }
        var xml = DomainXml.WithDiskSources(await GetXmlAsync(inactive: true, cancellationToken).ConfigureAwait(false), disks.Select(d => (d.Target, Path.GetFullPath(d.File), d.Format)));
        using var _ = await Connection.DefineDomainAsync(xml, cancellationToken).ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- consistency

    /// <summary>Records a disk's chain and the snapshot names, so <see cref="RestoreChainAsync"/> can bring both back.</summary>
    public async Task<DiskChainState> CaptureChainAsync(string disk, CancellationToken cancellationToken = default)
    {
        var d = await Block.QueryChainAsync(disk, cancellationToken).ConfigureAwait(false);
        var snaps = await Snapshots.ListAsync(cancellationToken).ConfigureAwait(false);
        return new DiskChainState(disk, d.Chain, snaps.Select(s => s.Name).ToArray());
    }

    /// <summary>
    /// The clean-up of a live-snapshot experiment in one call: stops the domain when it runs on a layer above the
    /// captured one (destroy; with <paramref name="restart"/> it is started again and its agent awaited), points the
    /// persistent disk back at the captured active layer, drops the metadata of snapshots made since (deleting
    /// with METADATA_ONLY), and deletes the layers that were added above it, but only those the lab created
    /// (<see cref="Host.LabFiles"/>); any other file is left and reported. Then checks that the domain XML and
    /// qemu-img both show the captured chain. When the domain already runs on the captured layer (e.g. after an
    /// active commit with pivot), only the snapshot metadata is dropped and the guest keeps running.
    /// </summary>
    public async Task<ChainRestoreResult> RestoreChainAsync(DiskChainState state, bool restart = false, TimeSpan? agentTimeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        var host = await Connection.GetHostAsync(cancellationToken).ConfigureAwait(false);
        var entry = Journal.LabJournal.Current.Begin("libvirt", $"restore {Name} {state.Disk} to {string.Join(" <- ", state.Chain.Reverse().Select(Path.GetFileName))}");
        try
        {
            var running = await GetStateAsync(cancellationToken).ConfigureAwait(false) != DomainState.ShutOff;
            var now = await Block.QueryChainAsync(state.Disk, cancellationToken).ConfigureAwait(false);
            var added = ChainRestore.LayersAbove(now.Chain, state.Chain)
                ?? throw new LabException($"cannot restore {Name} {state.Disk}: its chain {now.ToText()} does not sit on the captured chain {string.Join(" <- ", state.Chain.Reverse().Select(Path.GetFileName))}");
            var persistent = (await ListDisksAsync(inactive: true, cancellationToken).ConfigureAwait(false)).FirstOrDefault(d => d.Target == state.Disk);
            var persistentOk = persistent is not null && BackingChain.SameFile(persistent.Source, state.Chain[0]);
            // Nothing above the captured layer and the definition already on it: only the metadata goes, the guest keeps running.
            var stop = running && (added.Count > 0 || !persistentOk);
            if (stop)
            {
                await DestroyAsync(cancellationToken).ConfigureAwait(false);
            }
            if (!persistentOk)
            {
                await SetPersistentDiskSourceAsync(state.Disk, state.Chain[0], cancellationToken).ConfigureAwait(false);
            }
            var dropped = await Snapshots.DropMetadataExceptAsync(state.SnapshotNames, cancellationToken).ConfigureAwait(false);
            var deleted = new List<string>();
            var kept = new List<string>();
            foreach (var f in added)
            {
                if (await Host.LabFiles.DeleteIfLabMadeAsync(f, host, cancellationToken).ConfigureAwait(false))
                {
                    deleted.Add(f);
                }
                else
                {
                    kept.Add(f);
                }
            }
            var headers = await QemuImg.On(host).GetBackingChainAsync(state.Chain[0], cancellationToken: cancellationToken).ConfigureAwait(false);
            var agreement = headers.Compare(state.Chain);
            var xmlDisk = (await ListDisksAsync(inactive: true, cancellationToken).ConfigureAwait(false)).First(d => d.Target == state.Disk);
            if (!agreement.Agrees || !BackingChain.SameFile(xmlDisk.Source, state.Chain[0]))
            {
                throw new LabException($"restore of {Name} {state.Disk} left a different chain: {agreement.Summary}; domain XML source {xmlDisk.Source}");
            }
            if (restart && stop)
            {
                await StartAsync(cancellationToken).ConfigureAwait(false);
                await WaitForAgentAsync(agentTimeout ?? TimeSpan.FromMinutes(3), cancellationToken).ConfigureAwait(false);
            }
            var result = new ChainRestoreResult(state.Disk, headers, dropped, deleted, kept, stop);
            entry.Complete(result.Summary);
            return result;
        }
        catch (Exception e)
        {
            entry.Fail(e.Message);
            throw;
        }
    }

    public void Dispose()
    {
        lock (_lookup)
        {
            _current.Dispose();
        }
    }

    public override string ToString() => $"{Name} @ {Connection.Uri}";
}

/// <summary>A disk's chain (active first) and the domain's snapshot names at one moment.</summary>
public sealed record DiskChainState(string Disk, IReadOnlyList<string> Chain, IReadOnlyList<string> SnapshotNames);

/// <summary>What <see cref="LibvirtDomain.RestoreChainAsync"/> did.</summary>
/// <param name="Disk">The disk target.</param>
/// <param name="Chain">The restored chain as qemu-img reads it.</param>
/// <param name="DroppedSnapshots">Snapshot metadata removed.</param>
/// <param name="DeletedImages">Layers the lab had created and deleted.</param>
/// <param name="KeptImages">Layers above the restored one the lab did not create: left on disk.</param>
/// <param name="WasStopped">The domain was running and destroyed to restore it (restarted when asked).</param>
public sealed record ChainRestoreResult(string Disk, BackingChain Chain, IReadOnlyList<string> DroppedSnapshots, IReadOnlyList<string> DeletedImages, IReadOnlyList<string> KeptImages, bool WasStopped)
{
    public string Summary =>
        $"{Disk} back on {Chain.ToText()}; dropped {DroppedSnapshots.Count} snapshot(s), deleted {DeletedImages.Count} image(s), kept {KeptImages.Count} not made by the lab";
}

internal static class ChainRestore
{
    /// <summary>The files above <paramref name="captured"/> in <paramref name="now"/> (both active first); null when <paramref name="captured"/> is not the bottom of <paramref name="now"/>.</summary>
    public static IReadOnlyList<string>? LayersAbove(IReadOnlyList<string> now, IReadOnlyList<string> captured)
    {
        var extra = now.Count - captured.Count;
        if (extra < 0)
        {
            return null;
        }
        for (var i = 0; i < captured.Count; i++)
        {
            if (!BackingChain.SameFile(now[extra + i], captured[i]))
            {
                return null;
            }
        }
        return now.Take(extra).ToArray();
    }
}
