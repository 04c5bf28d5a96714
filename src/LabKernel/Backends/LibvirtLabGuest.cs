using LabKernel.Block;
using LabKernel.GuestAgent;
using LabKernel.Guests;
using LabKernel.Host;
using LabKernel.Images;
using LabKernel.Libvirt;

namespace LabKernel.Backends;

/// <summary>
/// A guest run by libvirt: the embedded guest as a domain the lab defines (and removes), or a user's domain that
/// the lab takes over for one experiment and hands back as it found it.
/// </summary>
/// <remarks>
/// With a user's domain the lab never writes the user's image: it first moves the running guest onto its own
/// overlay (a live disk-only snapshot, quiesced when the guest agent can freeze), and on dispose it powers the
/// guest off, points the persistent definition back at the user's image, drops the snapshot metadata it made and
/// starts the domain again if it was running. What the guest wrote during the experiment stays in the lab's
/// overlays, which the experiment keeps or deletes.
/// </remarks>
public sealed class LibvirtLabGuest : ILabGuest
{
    private readonly LibvirtConnection _connection;
    private readonly LibvirtGuest? _embedded;
    private readonly UserDomainState? _user;
    private readonly TimeSpan _shutdownTimeout;
    private readonly TimeSpan _agentTimeout;
    private bool _disposed;

    private LibvirtLabGuest(LibvirtConnection connection, LibvirtDomain domain, string disk, string baseImage, LibvirtGuest? embedded, UserDomainState? user, TimeSpan? bootToAgent, LabGuestOptions options)
    {
        _connection = connection;
        Domain = domain;
        Disk = disk;
        BaseImage = baseImage;
        _embedded = embedded;
        _user = user;
        BootToAgent = bootToAgent;
        _shutdownTimeout = options.ShutdownTimeout;
        DataDisks = user is null ? [.. options.DataDisks.Select((_, i) => DataDiskTarget(i))] : [];
        _agentTimeout = options.AgentTimeout;
        if (user is not null)
        {
            // If the process ends mid-experiment there is no time for a clean hand-back: at least point the
            // definition at the user's image again and drop the lab's snapshot records, so the next start is theirs.
            _exitHook = Host.ProcessExitHooks.Register($"libvirt domain {domain.Name}", () => PointBackAsync(user).GetAwaiter().GetResult());
        }
        else if (embedded is not null)
        {
            // A lab-made domain must not outlive the process that made it (a failed cell never reaches clean-up):
            // destroyed and undefined at exit; the run's images stay valid for `qemu-img check` and `lab clean`.
            _exitHook = Host.ProcessExitHooks.Register($"libvirt domain {domain.Name}", () => embedded.DisposeAsync().AsTask().GetAwaiter().GetResult());
        }
    }

    private readonly IDisposable? _exitHook;

    private async Task<int> PointBackAsync(UserDomainState user)
    {
        var persistent = (await Domain.ListDisksAsync(inactive: true).ConfigureAwait(false)).First(d => d.Target == Disk);
        if (!BackingChain.SameFile(persistent.Source, user.PersistentSource) || persistent.Format != user.PersistentFormat)
        {
            await Domain.SetPersistentDiskSourceAsync(Disk, user.PersistentSource, user.PersistentFormat.Length > 0 ? user.PersistentFormat : null).ConfigureAwait(false);
        }
        var dropped = (await Domain.Snapshots.DropMetadataExceptAsync(user.SnapshotNames).ConfigureAwait(false)).Count;
        if (await Domain.GetStateAsync().ConfigureAwait(false) != DomainState.ShutOff)
        {
            Host.LabWarnings.Raise($"domain '{Name}' still runs on the lab's overlay; its definition names {user.PersistentSource} again, so a restart returns it to your image");
        }
        return dropped;
    }

    private sealed record UserDomainState(bool WasRunning, string PersistentSource, string PersistentFormat, IReadOnlyList<string> SnapshotNames, bool Quiesced, string Sha256AtTakeOver, string? QuiesceRefusal = null);

    /// <summary>The libvirt domain, for what only libvirt offers (snapshot metadata, blockcopy, monitor passthrough).</summary>
    public LibvirtDomain Domain { get; }

    /// <summary>True when this is a user's domain the lab took over (not one it defined).</summary>
    public bool IsUserDomain => _user is not null;

    public DomainHandBack? HandBack { get; private set; }

    public DomainTakeOver? TakeOver => _user is { } u ? new DomainTakeOver(Domain.Name, Disk, u.WasRunning, u.WasRunning && u.Quiesced, u.QuiesceRefusal) : null;

    public string Backend => "libvirt";
    public string Name => Domain.Name;
    public string Disk { get; }
    public string BaseImage { get; }
    public TimeSpan? BootToAgent { get; }
    public IGuestAgent Agent => Domain.Agent;
    public ILabBlock Block => Domain.Block;
    public IReadOnlyList<string> DataDisks { get; }

    public LabCapabilities Capabilities =>
        LabCapabilities.LibvirtSnapshots
        | (_user is null ? LabCapabilities.BootCopies | LabCapabilities.BootAgain : 0)
        | (DataDisks.Count > 0 ? LabCapabilities.DataDisks : 0);

    public string Description => _user is null
        ? $"the embedded guest as libvirt domain '{Name}' on {_connection.Uri} ({_embedded!.Accelerator.Name}: {_embedded.Accelerator.Reason}), agent up {BootToAgent?.TotalSeconds:0.0} s after start"
        : $"your libvirt domain '{Name}' on {_connection.Uri}, disk {Disk}: the lab writes only into its own overlays above {BaseImage}"
          + (_user.WasRunning ? (_user.Quiesced ? " (first overlay taken live with the guest's filesystems frozen)" : " (first overlay taken live without quiescing: the guest agent could not freeze)") : " (overlays put on before the lab started it)")
          + (BootToAgent is { } b ? $"; started by the lab, agent up after {b.TotalSeconds:0.0} s" : "");

    internal static async Task<LibvirtLabGuest> StartEmbeddedAsync(LabGuestOptions options, CancellationToken cancellationToken)
    {
        var connection = await LibvirtConnection.OpenAsync(options.LibvirtUri, cancellationToken).ConfigureAwait(false);
        try
        {
            var image = await GuestImageBuilder.EnsureAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            var top = await LabGuests.CreateChainAsync(image.BaseImage, options.Overlays, cancellationToken).ConfigureAwait(false);
            var guest = await LibvirtGuest.CreateAsync(connection, new LibvirtGuestOptions
            {
                Name = $"lab-{options.Name}-{Guid.NewGuid().ToString("N")[..6]}",
                WorkFolder = options.WorkFolder,
                RootDisk = top,
                MemoryMiB = options.MemoryMiB,
                AgentTimeout = options.AgentTimeout,
                ExtraDisks = [.. options.DataDisks.Select((file, i) => new DomainDiskSpec(Path.GetFullPath(file), DataDiskTarget(i)))],
            }, cancellationToken).ConfigureAwait(false);
            return new LibvirtLabGuest(connection, guest.Domain, "vda", image.BaseImage, guest, null, guest.BootToAgent, options);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static string DataDiskTarget(int index) => $"vd{(char)('b' + index)}";

    internal static async Task<LibvirtLabGuest> TakeOverAsync(LabGuestOptions options, string name, CancellationToken cancellationToken)
    {
        if (options.DataDisks.Count > 0)
        {
            throw new LabUsageException($"data disks are attached only to the embedded guest: domain '{name}' keeps its own disks (name one with DomainDisk)");
        }
        var connection = await LibvirtConnection.OpenAsync(options.LibvirtUri, cancellationToken).ConfigureAwait(false);
        LibvirtDomain? domain = null;
        try
        {
            domain = await connection.LookupDomainAsync(name, cancellationToken).ConfigureAwait(false);
            if (!await domain.IsPersistentAsync(cancellationToken).ConfigureAwait(false))
            {
                throw new LabUsageException($"domain '{name}' is transient: the lab needs a persistent (defined) domain, so it can put it back on its own disk when the experiment ends");
            }
            var persistentDisks = await domain.ListDisksAsync(inactive: true, cancellationToken).ConfigureAwait(false);
            var wanted = string.IsNullOrWhiteSpace(options.DomainDisk) ? null : options.DomainDisk.Trim();
            var disk = (wanted is null ? persistentDisks.FirstOrDefault(d => d.Source.Length > 0) : persistentDisks.FirstOrDefault(d => d.Target == wanted))
                ?? throw new LabUsageException(wanted is null
                    ? $"domain '{name}' has no file-backed disk to work on"
                    : $"domain '{name}' has no disk {wanted} (it has {string.Join(", ", persistentDisks.Select(d => d.Target))})");
            var snapshots = (await domain.Snapshots.ListAsync(cancellationToken).ConfigureAwait(false)).Select(s => s.Name).ToArray();
            var state = await domain.GetStateAsync(cancellationToken).ConfigureAwait(false);
            var wasRunning = state == DomainState.Running;
            TimeSpan? boot = null;
            var chainMadeOffline = false;
            string? takeOverHash = null;
            if (!wasRunning)
            {
                if (state != DomainState.ShutOff)
                {
                    var described = state switch
                    {
                        DomainState.Paused => "paused",
                        DomainState.PmSuspended => "suspended by its guest (power management)",
                        DomainState.ShuttingDown => "shutting down",
                        DomainState.Crashed => "crashed",
                        _ => state.ToString().ToLowerInvariant(),
                    };
                    throw new LabUsageException($"domain '{name}' is {described}: resume it or shut it off first");
                }
                // Shut off: the lab's overlays go on before the first boot, so not even the boot writes the user's image.
                takeOverHash = await FileHash.Sha256Async(disk.Source, cancellationToken).ConfigureAwait(false);
                var top = await LabGuests.CreateChainAsync(disk.Source, options.Overlays, cancellationToken).ConfigureAwait(false);
                await domain.SetPersistentDiskSourceAsync(disk.Target, top, "qcow2", cancellationToken).ConfigureAwait(false);
                chainMadeOffline = true;
                await domain.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            try
            {
                var waited = await domain.WaitForAgentAsync(options.AgentTimeout, cancellationToken).ConfigureAwait(false);
                boot = wasRunning ? null : waited;
            }
            catch (LabTimeoutException e)
            {
                throw new LabException($"domain '{name}': {e.Message}; the notebooks drive the guest through qemu-guest-agent, so the guest needs it running and the domain an org.qemu.guest_agent.0 channel");
            }
            var quiesced = false;
            string? quiesceRefusal = null;
            for (var i = 0; i < (chainMadeOffline ? 0 : options.Overlays.Count); i++)
            {
                var overlay = Path.GetFullPath(options.Overlays[i]);
                var snap = $"lab-setup-{Path.GetFileNameWithoutExtension(overlay)}-{Guid.NewGuid().ToString("N")[..6]}";
                if (i == 0)
                {
                    try
                    {
                        await domain.Snapshots.CreateDiskOnlyAsync(snap, [new DiskSnapshotSpec(disk.Target, overlay)], metadata: false, quiesce: true, cancellationToken: cancellationToken).ConfigureAwait(false);
                        quiesced = true;
                        continue;
                    }
                    catch (LibvirtException e) when (!File.Exists(overlay))
                    {
                        // The agent cannot freeze (no fsfreeze, or a filesystem that refuses it): take it unquiesced,
                        // and say so (DomainTakeOver becomes a finding).
                        quiesceRefusal = e.Message;
                    }
                }
                await domain.Snapshots.CreateDiskOnlyAsync(snap, [new DiskSnapshotSpec(disk.Target, overlay)], metadata: false, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            // From here on the user's image is a read-only backing file: its bytes now are the evidence for the hand-back.
            takeOverHash ??= await FileHash.Sha256Async(disk.Source, cancellationToken).ConfigureAwait(false);
            var found = new UserDomainState(wasRunning, disk.Source, disk.Format, snapshots, quiesced || chainMadeOffline, takeOverHash, quiesceRefusal);
            return new LibvirtLabGuest(connection, domain, disk.Target, disk.Source, null, found, boot, options);
        }
        catch
        {
            domain?.Dispose();
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public int? QemuProcessId => Domain.QemuProcessId;

    public Task<TimeSpan> RebootAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        GuestReboot.RunAsync(Domain.Agent, () => Domain.RequestRebootAsync(cancellationToken),
            left => Domain.WaitForAgentAsync(left, cancellationToken), timeout, cancellationToken);

    public async Task<TimeSpan> BootAgainAsync(IReadOnlyDictionary<string, string>? diskImages = null, CancellationToken cancellationToken = default)
    {
        if (_user is not null)
        {
            throw new LabUsageException($"the lab does not re-point the disks of your domain '{Name}' mid-experiment (only the embedded guest can boot again on other images)");
        }
        var (known, images) = LabGuests.CheckBootAgain(this, diskImages);
        // The live chains first: after a live snapshot the running disk's top is newer than the definition's.
        var tops = new Dictionary<string, string>();
        if (await Domain.GetStateAsync(cancellationToken).ConfigureAwait(false) != DomainState.ShutOff)
        {
            foreach (var disk in await Domain.ListDisksAsync(inactive: false, cancellationToken).ConfigureAwait(false))
            {
                tops[disk.Target] = disk.Source;
            }
            await StopAsync(cancellationToken).ConfigureAwait(false);
        }
        foreach (var name in known)
        {
            var file = images.TryGetValue(name, out var image) ? Path.GetFullPath(image) : tops.GetValueOrDefault(name);
            if (file is not null)
            {
                await Domain.SetPersistentDiskSourceAsync(name, file, "qcow2", cancellationToken).ConfigureAwait(false);
            }
        }
        // A new QEMU process: its node names and jobs are new, so the monitor (and its remembered chains) is too.
        if (_qmp is not null)
        {
            await _qmp.DisposeAsync().ConfigureAwait(false);
            (_qmp, _monitor) = (null, null);
        }
        await Domain.StartAsync(cancellationToken).ConfigureAwait(false);
        return await Domain.WaitForAgentAsync(_agentTimeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// QMP through libvirt's monitor passthrough, opened once (closed with the guest), and its one block layer:
    /// every call hands back the same, so the remembered chains are the connection's.
    /// </summary>
    public async Task<BlockLayer> OpenMonitorAsync(CancellationToken cancellationToken = default)
    {
        _qmp ??= await LibvirtQmp.ConnectAsync(Domain, cancellationToken).ConfigureAwait(false);
        return _monitor ??= await LibvirtQmp.BlockLayerAsync(Domain, _qmp, cancellationToken).ConfigureAwait(false);
    }

    private Qmp.QmpClient? _qmp;
    private BlockLayer? _monitor;

    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            await Domain.ShutdownAsync(_shutdownTimeout, ShutdownMode.GuestAgent, cancellationToken).ConfigureAwait(false);
        }
        catch (LabTimeoutException)
        {
            // A guest that does not power off within the limit is stopped hard; its overlays stay valid images.
            await Domain.DestroyAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        try
        {
            if (_qmp is not null)
            {
                await _qmp.DisposeAsync().ConfigureAwait(false);
            }
            if (_embedded is not null)
            {
                _exitHook?.Dispose();
                await _embedded.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                await HandBackAsync().ConfigureAwait(false);
                Domain.Dispose();
            }
        }
        finally
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Puts a user's domain back on its own disk, as it was found (see the class remarks).</summary>
    private async Task HandBackAsync()
    {
        var user = _user!;
        var entry = Journal.LabJournal.Current.Begin("libvirt", $"hand {Name} back: {Disk} on {Path.GetFileName(user.PersistentSource)}, {(user.WasRunning ? "running" : "shut off")}");
        try
        {
            if (await Domain.GetStateAsync().ConfigureAwait(false) != DomainState.ShutOff)
            {
                await StopAsync().ConfigureAwait(false);
            }
            var dropped = await PointBackAsync(user).ConfigureAwait(false);
            _exitHook?.Dispose();
            var handBackHash = await FileHash.Sha256Async(user.PersistentSource).ConfigureAwait(false);
            var now = (await Domain.ListDisksAsync(inactive: true).ConfigureAwait(false)).First(d => d.Target == Disk);
            if (!BackingChain.SameFile(now.Source, user.PersistentSource))
            {
                throw new LabException($"could not put domain '{Name}' back on {user.PersistentSource}: its definition names {now.Source}");
            }
            if (user.WasRunning)
            {
                await Domain.StartAsync().ConfigureAwait(false);
                await Domain.WaitForAgentAsync(_agentTimeout).ConfigureAwait(false);
            }
            var summary = $"domain '{Name}' {Disk} back on {user.PersistentSource}, {(user.WasRunning ? "running again" : "shut off as found")}; dropped {dropped} snapshot record(s) the lab made; "
                + (user.Sha256AtTakeOver == handBackHash ? "the image's SHA-256 is unchanged since the take-over" : "THE IMAGE'S SHA-256 CHANGED since the take-over");
            HandBack = new DomainHandBack(Name, Disk, user.PersistentSource, user.Sha256AtTakeOver, handBackHash, summary);
            entry.Complete(summary);
        }
        catch (Exception e)
        {
            entry.Fail(e.Message);
            throw;
        }
    }
}
