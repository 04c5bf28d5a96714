using LabKernel.Block;
using LabKernel.GuestAgent;
using LabKernel.Guests;
using LabKernel.Host;
using LabKernel.Images;
using LabKernel.Libvirt;
using LabKernel.Snapshots;

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

    private LibvirtLabGuest(LibvirtConnection connection, ILabHost host, LibvirtDomain domain, string disk, string baseImage, LibvirtGuest? embedded, UserDomainState? user, TimeSpan? bootToAgent, LabGuestOptions options)
    {
        _connection = connection;
        Host = host;
        Domain = domain;
        Disk = disk;
        BaseImage = baseImage;
        _embedded = embedded;
        _user = user;
        BootToAgent = bootToAgent;
        _shutdownTimeout = options.ShutdownTimeout;
        DataDisks = user is null ? [.. options.DataDisks.Select((_, i) => VirtioTargets.DataDisk(i))] : [];
        DataDiskDevices = [.. DataDisks.Select(VirtioTargets.Device)];
        _agentTimeout = options.AgentTimeout;
        // One block layer for the guest's disks: libvirt's block API, and QMP's backups through the passthrough.
        domain.Block.UseMonitor(OpenMonitorAsync);
        if (user is not null)
        {
            // If the process ends mid-experiment there is no time for a clean hand-back: at least point the
            // definition at the user's image again and drop the lab's snapshot records, so the next start is theirs.
            _exitHook = ProcessExitHooks.Register($"libvirt domain {domain.Name}", () => PointBackAsync(user).GetAwaiter().GetResult());
        }
        else if (embedded is not null)
        {
            // A lab-made domain must not outlive the process that made it (a failed cell never reaches clean-up):
            // destroyed and undefined at exit; the run's images stay valid for `qemu-img check` and `lab clean`.
            _exitHook = ProcessExitHooks.Register($"libvirt domain {domain.Name}", () => embedded.DisposeAsync().AsTask().GetAwaiter().GetResult());
        }
    }

    private readonly IDisposable? _exitHook;

    private async Task<int> PointBackAsync(UserDomainState user)
    {
        var persistent = await Domain.ListDisksAsync(inactive: true).ConfigureAwait(false);
        var moves = new List<(string Target, string File, string? Format)>();
        foreach (var d in user.Disks)
        {
            var now = persistent.FirstOrDefault(p => p.Target == d.Target);
            if (now is null || !BackingChain.SameFile(now.Source, d.Source) || now.Format != d.Format)
            {
                moves.Add((d.Target, d.Source, d.Format.Length > 0 ? d.Format : null));
            }
        }
        await Domain.SetPersistentDiskSourcesAsync(moves).ConfigureAwait(false);
        var dropped = (await Domain.Snapshots.DropMetadataExceptAsync(user.SnapshotNames).ConfigureAwait(false)).Count;
        if (user.RecordFolder is { } folder)
        {
            // The definition is the user's again: nothing left for `lab clean` to hand back.
            await DeleteRecordAsync(Host, folder).ConfigureAwait(false);
        }
        if (await Domain.GetStateAsync().ConfigureAwait(false) != DomainState.ShutOff)
        {
            LabWarnings.Raise($"domain '{Name}' still runs on the lab's overlays; its definition names your images ({string.Join(", ", user.Disks.Select(d => Path.GetFileName(d.Source)))}) again, so a restart returns it to them");
        }
        return dropped;
    }

    /// <summary>One disk of a user's domain as the lab found it: its own active image and format.</summary>
    private sealed record UserDisk(string Target, string Source, string Format);

    private sealed record UserDomainState(bool WasRunning, IReadOnlyList<UserDisk> Disks, IReadOnlyList<string> SnapshotNames, bool Quiesced, ImageHashes AtTakeOver, string? QuiesceRefusal = null)
    {
        /// <summary>The folder on the domain's host holding the <see cref="TakeOverRecord"/> (the run's image folder).</summary>
        public string? RecordFolder { get; init; }
    }

    /// <summary>The libvirt domain, for what only libvirt offers (snapshot metadata, blockcopy, monitor passthrough).</summary>
    public LibvirtDomain Domain { get; }

    /// <summary>True when this is a user's domain the lab took over (not one it defined).</summary>
    public bool IsUserDomain => _user is not null;

    public DomainHandBack? HandBack { get; private set; }

    public DomainTakeOver? TakeOver => _user is { } u ? new DomainTakeOver(Domain.Name, Disk, u.WasRunning, u.WasRunning && u.Quiesced, u.QuiesceRefusal) { Disks = [.. u.Disks.Select(d => d.Target)] } : null;

    public GuestBackend Backend => GuestBackend.Libvirt;

    public ILabHost Host { get; }
    public string Name => Domain.Name;
    public string Disk { get; }
    public string BaseImage { get; }
    public TimeSpan? BootToAgent { get; }
    public IGuestAgent Agent => Domain.Agent;
    public ILabBlock Block => Domain.Block;
    public IGuestSnapshotMaker Snapshots => new LibvirtSnapshotMaker(this);
    public IReadOnlyList<string> DataDisks { get; private set; }

    public IReadOnlyList<string> DataDiskDevices { get; private set; }

    public LabCapabilities Capabilities =>
        LabCapabilities.LibvirtSnapshots
        | (_user is null ? LabCapabilities.BootAgain : 0)
        // A copy boots as a second guest on this machine's QEMU, from files here: a domain the lab made on another
        // host has its copies there, read offline instead.
        | (_user is null && Host.IsLocal ? LabCapabilities.BootCopies : 0)
        | (DataDisks.Count > 0 ? LabCapabilities.DataDisks : 0)
        | (_user is not null && DataDisks.Count > 0 ? LabCapabilities.SwapDataDisks : 0);

    public string Description => _user is null
        ? $"the embedded guest as libvirt domain '{Name}' on {_connection.Uri} ({_embedded!.Accelerator.Name}: {_embedded.Accelerator.Reason}), agent up {BootToAgent?.TotalSeconds:0.0} s after start"
        : $"your libvirt domain '{Name}' on {_connection.Uri}{(Host.IsLocal ? "" : $" (its files through SSH as {Host.Name})")}, disk {Disk}: every disk ({string.Join(", ", _user.Disks.Select(d => d.Target))}) runs on the lab's own overlays, the lab works on {Disk} above {BaseImage}"
          + (_user.WasRunning ? (_user.Quiesced ? " (first overlay taken live with the guest's filesystems frozen)" : " (first overlay taken live without quiescing: the guest agent could not freeze)") : " (overlays put on before the lab started it)")
          + (BootToAgent is { } b ? $"; started by the lab, agent up after {b.TotalSeconds:0.0} s" : "");

    internal static async Task<LibvirtLabGuest> StartEmbeddedAsync(LabGuestOptions options, CancellationToken cancellationToken)
    {
        var connection = await LibvirtConnection.OpenAsync(options.LibvirtUri, options.Time, cancellationToken).ConfigureAwait(false);
        try
        {
            // On another hypervisor the guest image is copied there once (HostFolder/.lab-images) and the domain made
            // there, its chain on that host's files.
            // The run's host serves the connection too (one SSH session), as for a take-over.
            if (options.Host is { } given)
            {
                connection.UseHost(given);
            }
            var host = await connection.GetHostAsync(cancellationToken).ConfigureAwait(false);
            var local = await GuestImageBuilder.EnsureAsync(progress: options.BuildProgress, cancellationToken: cancellationToken).ConfigureAwait(false);
            var image = await HostGuestImages.EnsureOnAsync(host, local, options.HostFolder, cancellationToken).ConfigureAwait(false);
            var top = await LabGuests.CreateChainAsync(host, image.BaseImage, options.Overlays, cancellationToken).ConfigureAwait(false);
            var guest = await LibvirtGuest.CreateAsync(connection, new LibvirtGuestOptions
            {
                Host = host,
                Image = image,
                Name = $"lab-{options.Name}-{Guid.NewGuid().ToString("N")[..6]}",
                WorkFolder = options.WorkFolder,
                RootDisk = top,
                MemoryMiB = options.MemoryMiB,
                AgentTimeout = options.AgentTimeout,
                BuildProgress = options.BuildProgress,
                ExtraDisks = [.. options.DataDisks.Select((file, i) => new DomainDiskSpec(Path.GetFullPath(file), VirtioTargets.DataDisk(i)))],
            }, cancellationToken).ConfigureAwait(false);
            return new LibvirtLabGuest(connection, host, guest.Domain, "vda", image.BaseImage, guest, null, guest.BootToAgent, options);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    internal static async Task<LibvirtLabGuest> TakeOverAsync(LabGuestOptions options, string name, CancellationToken cancellationToken)
    {
        var guest = await TakeOverDisksAsync(options, name, cancellationToken).ConfigureAwait(false);
        if (options.DataDisks.Count == 0)
        {
            return guest;
        }
        try
        {
            await guest.PlugDataDisksAsync(options.DataDisks, cancellationToken).ConfigureAwait(false);
            return guest;
        }
        catch
        {
            // Handed back as found: the plugged disks go with the guest's power-off.
            await guest.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The serial a lab data disk shows the guest (<c>/sys/block/vdX/serial</c>), by its index.</summary>
    internal static string DataDiskSerial(int index) => $"lab-data{index}";

    /// <summary>
    /// Hot-plugs the lab's data disks into the running user's domain (live only: the definition never names them),
    /// each on the first free target after the domain's own disks, and waits until the guest has each as a block
    /// device (found by its serial).
    /// </summary>
    private async Task PlugDataDisksAsync(IReadOnlyList<string> files, CancellationToken cancellationToken)
    {
        var used = (await Domain.ListDisksAsync(inactive: false, cancellationToken).ConfigureAwait(false))
            .Concat(await Domain.ListDisksAsync(inactive: true, cancellationToken).ConfigureAwait(false))
            .Select(d => d.Target).ToHashSet(StringComparer.Ordinal);
        var targets = new List<string>();
        var devices = new List<string>();
        for (var i = 0; i < files.Count; i++)
        {
            var target = VirtioTargets.FirstFree(used, Name);
            used.Add(target);
            devices.Add(await PlugAsync(files[i], target, DataDiskSerial(i), cancellationToken).ConfigureAwait(false));
            targets.Add(target);
            DataDisks = [.. targets];
            DataDiskDevices = [.. devices];
        }
    }

    private async Task<string> PlugAsync(string file, string target, string serial, CancellationToken cancellationToken)
    {
        try
        {
            await Domain.AttachDiskAsync(file, target, "qcow2", live: true, config: false, cancellationToken, serial).ConfigureAwait(false);
        }
        catch (LibvirtException e)
        {
            throw new LabException($"could not hot-plug the lab's data disk into domain '{Name}' as {target}: {e.Message}. It goes in while the guest runs: a q35 domain needs a free pcie-root-port for it (virt-install gives its domains spares)", e);
        }
        return await GuestDeviceAsync(serial, present: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Waits until the guest has (or, with <paramref name="present"/> false, no longer has) a block device whose
    /// serial is <paramref name="serial"/>, and returns its /dev path (empty when gone).
    /// </summary>
    private Task<string> GuestDeviceAsync(string serial, bool present, CancellationToken cancellationToken) =>
        Poll.UntilAsync(async ct =>
        {
            var r = await Domain.Agent.ShellAsync(
                $"for d in /sys/block/*; do [ \"$(cat $d/serial 2>/dev/null)\" = '{serial}' ] && echo /dev/${{d##*/}}; done; true",
                new GuestExecOptions { Timeout = TimeSpan.FromSeconds(30), Check = true }, ct).ConfigureAwait(false);
            var device = r.StandardOutput.Trim();
            return (device.Length > 0 == present, device, device.Length > 0 ? $"the guest has it as {device}" : "the guest has no such device");
        }, $"the guest of domain '{Name}' to {(present ? "see" : "let go of")} the disk with serial {serial}", _agentTimeout, time: _connection.Time, cancellationToken: cancellationToken);

    public async Task<TimeSpan> SwapDataDiskAsync(string disk, string image, CancellationToken cancellationToken = default)
    {
        var index = DataDisks.ToList().IndexOf(disk);
        if (_user is null || index < 0)
        {
            throw new LabUsageException(_user is null
                ? $"the lab swaps data disks live only on your domain: the embedded guest boots again on other images (BootAgainAsync)"
                : $"{disk} is not one of the lab's data disks of domain '{Name}' ({string.Join(", ", DataDisks)})");
        }
        LabFiles.EnsureMayModify(image, $"plug into domain '{Name}' as {disk}", host: Host);
        var started = _connection.Time.GetTimestamp();
        var device = DataDiskDevices[index];
        // Unmounted first: a disk pulled from under a mounted filesystem leaves the guest's ext4 in error.
        await Domain.Agent.ShellAsync($"sync; awk '$1 == \"{device}\" {{ print $2 }}' /proc/mounts | while read -r m; do umount \"$m\"; done",
            new GuestExecOptions { Timeout = TimeSpan.FromMinutes(2), Check = true }, cancellationToken).ConfigureAwait(false);
        await Domain.DetachDiskAsync(disk, live: true, config: false, cancellationToken).ConfigureAwait(false);
        // libvirt returns once QEMU asked the guest to let go; the disk is gone when the guest has released it.
        await Poll.UntilAsync(async ct =>
        {
            var live = await Domain.ListDisksAsync(inactive: false, ct).ConfigureAwait(false);
            return (live.All(d => d.Target != disk), live.Any(d => d.Target == disk) ? $"{disk} still attached" : "");
        }, $"domain '{Name}' to release data disk {disk}", _agentTimeout, time: _connection.Time, cancellationToken: cancellationToken).ConfigureAwait(false);
        await GuestDeviceAsync(DataDiskSerial(index), present: false, cancellationToken).ConfigureAwait(false);
        var plugged = await PlugAsync(image, disk, DataDiskSerial(index), cancellationToken).ConfigureAwait(false);
        var devices = DataDiskDevices.ToArray();
        devices[index] = plugged;
        DataDiskDevices = devices;
        return _connection.Time.GetElapsedTime(started);
    }

    private static async Task<LibvirtLabGuest> TakeOverDisksAsync(LabGuestOptions options, string name, CancellationToken cancellationToken)
    {
        var connection = await LibvirtConnection.OpenAsync(options.LibvirtUri, options.Time, cancellationToken).ConfigureAwait(false);
        LibvirtDomain? domain = null;
        // Once the domain is on the lab's overlays (its definition changed, or a live snapshot taken) a failure before
        // the guest exists must put it back itself: the exit hook that does it later is the guest's.
        IReadOnlyList<DomainDisk>? movedOff = null;
        IReadOnlyList<DomainDisk>? covered = null;
        ILabHost? host = null;
        string? recordFolder = null;
        var startedHere = false;
        try
        {
            if (options.Host is { } given)
            {
                connection.UseHost(given);
            }
            host = await connection.GetHostAsync(cancellationToken).ConfigureAwait(false);
            foreach (var o in options.Overlays)
            {
                if (await host.FileExistsAsync(o, cancellationToken).ConfigureAwait(false))
                {
                    throw new OverlayExistsException(o);
                }
            }
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
            // Every writable disk goes onto a lab overlay, not only the one worked on: libvirt's internal snapshots and
            // reverts write every qcow2 disk, and a destroy is a power cut for each filesystem on a disk.
            covered = DisksToCover(name, persistentDisks, disk.Target);
            var snapshots = (await domain.Snapshots.ListAsync(cancellationToken).ConfigureAwait(false)).Select(s => s.Name).ToArray();
            var state = await domain.GetStateAsync(cancellationToken).ConfigureAwait(false);
            var wasRunning = state == DomainState.Running;
            if (!wasRunning && state != DomainState.ShutOff)
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
            // The user's images, every layer of every disk: the evidence the hand-back compares.
            var images = await UserImagesAsync(host, persistentDisks, cancellationToken).ConfigureAwait(false);
            var overlays = covered.ToDictionary(d => d.Target, d => d.Target == disk.Target
                ? Path.GetFullPath(options.Overlays[0])
                : Path.GetFullPath(options.NewFile?.Invoke($"{d.Target}-overlay", $"{d.Target}-lab.qcow2") ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(options.Overlays[0]))!, $"{d.Target}-lab.qcow2")));
            // Written before the domain moves onto the overlays: if this process is killed (or the host goes down) before
            // the hand-back, `lab clean` hands the domain back from it.
            var record = new TakeOverRecord(name, [.. covered.Select(d => new TakeOverDisk(d.Target, d.Source, d.Format))], snapshots);
            recordFolder = Path.GetDirectoryName(overlays[disk.Target])!;
            await record.WriteAsync(host, recordFolder, cancellationToken).ConfigureAwait(false);
            TimeSpan? boot = null;
            ImageHashes? hashes = null;
            var quiesced = false;
            string? quiesceRefusal = null;
            if (!wasRunning)
            {
                // Shut off: the lab's overlays go on before the first boot, so not even the boot writes the user's images.
                hashes = await ImageHashes.TakeAsync(images, cancellationToken, host).ConfigureAwait(false);
                var tops = new List<(string Target, string File, string? Format)>();
                foreach (var d in covered)
                {
                    var chain = d.Target == disk.Target ? options.Overlays : [overlays[d.Target]];
                    tops.Add((d.Target, await LabGuests.CreateChainAsync(host, d.Source, chain, cancellationToken, d.Format).ConfigureAwait(false), "qcow2"));
                }
                movedOff = covered;
                await domain.SetPersistentDiskSourcesAsync(tops, cancellationToken).ConfigureAwait(false);
                startedHere = true;
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
            if (wasRunning)
            {
                // Running: one atomic disk-only snapshot moves every disk onto its lab overlay at the same instant,
                // quiesced when the agent can freeze; the worked-on disk then gets the rest of its starting chain.
                var specs = covered.Select(d => new DiskSnapshotSpec(d.Target, overlays[d.Target])).ToArray();
                var snap = $"lab-setup-{Guid.NewGuid().ToString("N")[..6]}";
                movedOff = covered;
                quiesceRefusal = await TakeFirstOverlaysAsync(
                    quiesce => domain.Snapshots.CreateDiskOnlyAsync(snap, specs, metadata: false, quiesce: quiesce, cancellationToken: cancellationToken),
                    [.. specs.Select(o => o.OverlayFile)], host).ConfigureAwait(false);
                quiesced = quiesceRefusal is null;
                for (var i = 1; i < options.Overlays.Count; i++)
                {
                    var overlay = Path.GetFullPath(options.Overlays[i]);
                    var next = $"lab-setup-{Path.GetFileNameWithoutExtension(overlay)}-{Guid.NewGuid().ToString("N")[..6]}";
                    await domain.Snapshots.CreateDiskOnlyAsync(next, [new DiskSnapshotSpec(disk.Target, overlay)], metadata: false, cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                // From here on the user's images are read-only backing files: their bytes now are the evidence.
                hashes = await ImageHashes.TakeAsync(images, cancellationToken, host).ConfigureAwait(false);
            }
            var found = new UserDomainState(wasRunning, [.. covered.Select(d => new UserDisk(d.Target, d.Source, d.Format))], snapshots, quiesced || !wasRunning, hashes!, quiesceRefusal) { RecordFolder = recordFolder };
            return new LibvirtLabGuest(connection, host, domain, disk.Target, disk.Source, null, found, boot, options);
        }
        catch
        {
            if (domain is not null && movedOff is not null)
            {
                await PutBackAfterFailedTakeOverAsync(domain, movedOff, startedHere).ConfigureAwait(false);
            }
            if (recordFolder is not null && host is not null && (domain is null || movedOff is null || await DefinitionIsBackAsync(domain, covered).ConfigureAwait(false)))
            {
                await DeleteRecordAsync(host, recordFolder).ConfigureAwait(false);
            }
            domain?.Dispose();
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static Task DeleteRecordAsync(ILabHost host, string folder) =>
        LabKernel.Block.BlockLayer.TryAsync(() => host.DeleteFileAsync(Path.Combine(folder, TakeOverRecord.FileName), CancellationToken.None));

    private static async Task<bool> DefinitionIsBackAsync(LibvirtDomain domain, IReadOnlyList<DomainDisk>? covered)
    {
        try
        {
            var now = await domain.ListDisksAsync(inactive: true).ConfigureAwait(false);
            return covered is null || covered.All(d => now.Any(n => n.Target == d.Target && BackingChain.SameFile(n.Source, d.Source)));
        }
        catch (LabException)
        {
            return false;
        }
    }

    /// <summary>
    /// A take-over that failed after the domain went onto the lab's overlays: a domain the lab started is destroyed
    /// (it was shut off when found), and the definition names the user's images again. A running domain stays on the
    /// overlays until restarted, as after an interrupted run (a warning says so). Best effort: the take-over's own
    /// error is what the caller sees.
    /// </summary>
    private static async Task PutBackAfterFailedTakeOverAsync(LibvirtDomain domain, IReadOnlyList<DomainDisk> disks, bool startedHere)
    {
        try
        {
            if (startedHere && await domain.GetStateAsync().ConfigureAwait(false) != DomainState.ShutOff)
            {
                await domain.DestroyAsync().ConfigureAwait(false);
            }
            await domain.SetPersistentDiskSourcesAsync([.. disks.Select(d => (d.Target, d.Source, d.Format.Length > 0 ? d.Format : (string?)null))]).ConfigureAwait(false);
            if (!startedHere)
            {
                LabWarnings.Raise($"domain '{domain.Name}' still runs on the lab's overlays after a failed take-over; its definition names your images again, so a restart returns it to them");
            }
        }
        catch (LabException e)
        {
            LabWarnings.Raise($"could not put domain '{domain.Name}' back on your images after a failed take-over: {e.Message}");
        }
    }

    /// <summary>
    /// The first live overlays of a running user's domain: one snapshot quiesced through the guest agent, or, when
    /// libvirt refuses that before any overlay file exists (the agent cannot freeze: no fsfreeze, or a filesystem that
    /// refuses it), the same snapshot again without quiescing (crash-consistent). Returns libvirt's refusal, or null
    /// when it was quiesced; the refusal becomes part of <see cref="DomainTakeOver"/>, a finding. A failure after an
    /// overlay file was made is not retried (it would not be the same snapshot).
    /// </summary>
    /// <param name="snapshot">Takes the snapshot; its argument says whether to quiesce.</param>
    /// <param name="overlayFiles">The overlay files the snapshot makes.</param>
    /// <param name="host">Where those files are (this machine when null).</param>
    internal static async Task<string?> TakeFirstOverlaysAsync(Func<bool, Task> snapshot, IReadOnlyList<string> overlayFiles, ILabHost? host = null)
    {
        host ??= LocalHost.Instance;
        LibvirtException refusal;
        try
        {
            await snapshot(true).ConfigureAwait(false);
            return null;
        }
        catch (LibvirtException e)
        {
            refusal = e;
        }
        foreach (var f in overlayFiles)
        {
            if (await host.FileExistsAsync(f, CancellationToken.None).ConfigureAwait(false))
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(refusal);
            }
        }
        await snapshot(false).ConfigureAwait(false);
        return refusal.Message;
    }

    /// <summary>
    /// The disks of a user's domain that get a lab overlay: every writable one with a source (read-only disks are
    /// never written). A writable disk the lab cannot put an overlay on (network, pool volume) refuses the take-over.
    /// </summary>
    internal static IReadOnlyList<DomainDisk> DisksToCover(string domain, IReadOnlyList<DomainDisk> disks, string worked)
    {
        var covered = new List<DomainDisk>();
        foreach (var d in disks)
        {
            if (d.ReadOnly && d.Target != worked)
            {
                continue;
            }
            var local = d.SourceType is "file" or "block";
            if (local && d.Source.Length == 0 && d.Target != worked)
            {
                continue; // no medium
            }
            if (!local || d.Source.Length == 0)
            {
                throw new LabUsageException($"domain '{domain}' disk {d.Target} is a {d.SourceType} disk{(d.Source.Length == 0 ? " with no local source" : "")}: the lab puts its overlay on every writable disk of your domain and can only do that over a local file or block device");
            }
            covered.Add(d);
        }
        return covered;
    }

    /// <summary>Every layer of every disk (active first, from the image headers on <paramref name="host"/>), each with the disk it belongs to.</summary>
    private static async Task<IReadOnlyList<(string Disk, string Image)>> UserImagesAsync(ILabHost host, IReadOnlyList<DomainDisk> disks, CancellationToken cancellationToken)
    {
        var images = new List<(string Disk, string Image)>();
        foreach (var d in disks.Where(d => d.Source.Length > 0 && d.SourceType is "file" or "block"))
        {
            var chain = await QemuImg.On(host).GetBackingChainAsync(d.Source, format: d.Format.Length > 0 ? d.Format : null, cancellationToken: cancellationToken).ConfigureAwait(false);
            foreach (var layer in chain.Layers.Select(l => l.Filename))
            {
                // A block device is not a regular file (test -f says no over SSH): its bytes are evidence all the same.
                if (d.SourceType != "block" && !await host.FileExistsAsync(layer, cancellationToken).ConfigureAwait(false))
                {
                    continue;
                }
                if (images.All(i => !BackingChain.SameFile(i.Image, layer)))
                {
                    images.Add((d.Target, Path.GetFullPath(layer)));
                }
            }
        }
        return images;
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

    /// <summary>libvirt restores memory through its own snapshots (<c>virDomainRevertToSnapshot</c>), not the lab's saved states.</summary>
    public Task<TimeSpan> RestoreAsync(IReadOnlyDictionary<string, string> diskImages, string memoryState, CancellationToken cancellationToken = default) =>
        throw new LabUsageException($"the lab restores saved memory states only on the QEMU backend; libvirt domain '{Name}' reverts through libvirt's own snapshots");

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
        var entry = Journal.LabJournal.Current.Begin("libvirt", $"hand {Name} back: {string.Join(", ", user.Disks.Select(d => $"{d.Target} on {Path.GetFileName(d.Source)}"))}, {(user.WasRunning ? "running" : "shut off")}");
        try
        {
            if (await Domain.GetStateAsync().ConfigureAwait(false) != DomainState.ShutOff)
            {
                await StopAsync().ConfigureAwait(false);
            }
            var dropped = await PointBackAsync(user).ConfigureAwait(false);
            _exitHook?.Dispose();
            // Before the domain runs on them again: every image of every disk, compared with the take-over.
            var atHandBack = await ImageHashes.TakeAsync(user.AtTakeOver.Images, CancellationToken.None, Host).ConfigureAwait(false);
            var now = await Domain.ListDisksAsync(inactive: true).ConfigureAwait(false);
            foreach (var d in user.Disks)
            {
                var named = now.FirstOrDefault(n => n.Target == d.Target)?.Source ?? "(no such disk)";
                if (!BackingChain.SameFile(named, d.Source))
                {
                    throw new LabException($"could not put domain '{Name}' {d.Target} back on {d.Source}: its definition names {named}");
                }
            }
            if (user.WasRunning)
            {
                await Domain.StartAsync().ConfigureAwait(false);
                await Domain.WaitForAgentAsync(_agentTimeout).ConfigureAwait(false);
            }
            var evidence = user.AtTakeOver.Compare(atHandBack);
            var summary = $"domain '{Name}' back on its own images ({string.Join(", ", user.Disks.Select(d => $"{d.Target}: {Path.GetFileName(d.Source)}"))}), {(user.WasRunning ? "running again" : "shut off as found")}; dropped {dropped} snapshot record(s) the lab made; "
                + (evidence.All(e => e.Unchanged) ? $"the SHA-256 of all {evidence.Count} images is unchanged since the take-over" : $"THE SHA-256 CHANGED since the take-over: {string.Join(", ", evidence.Where(e => !e.Unchanged).Select(e => Path.GetFileName(e.Image)))}");
            HandBack = new DomainHandBack(Name, Disk, evidence, atHandBack.Elapsed, atHandBack.Bytes, summary);
            entry.Complete(summary);
        }
        catch (Exception e)
        {
            entry.Fail(e.Message);
            throw;
        }
    }
}

/// <summary>
/// Each kind of snapshot through libvirt's snapshot API (what <c>virsh snapshot-create-as</c> calls), and libvirt's
/// revert where it has one; a user's domain gets the lab's external revert on the domain itself.
/// </summary>
internal sealed class LibvirtSnapshotMaker(LibvirtLabGuest guest) : IGuestSnapshotMaker
{
    public bool Supports(SnapshotKind kind) => true;

    /// <summary>libvirt's state of the domain: paused (its CPUs stopped, by libvirt or QEMU) or not.</summary>
    public Func<CancellationToken, Task<bool>>? ReadSuspended =>
        async ct => await guest.Domain.GetStateAsync(ct).ConfigureAwait(false) == DomainState.Paused;

    public async Task<string> TakeAsync(string disk, SnapshotKind kind, string name, string? overlay, string? memory, CancellationToken cancellationToken = default)
    {
        var snapshots = guest.Domain.Snapshots;
        switch (kind)
        {
            case SnapshotKind.Internal:
                await snapshots.CreateInternalAsync(name, cancellationToken: cancellationToken).ConfigureAwait(false);
                return "virDomainSnapshotCreateXML, flags 0 (virsh snapshot-create-as NAME)";
            case SnapshotKind.DiskOnly:
                await snapshots.CreateDiskOnlyAsync(name, [new DiskSnapshotSpec(disk, overlay!)], cancellationToken: cancellationToken).ConfigureAwait(false);
                return "DISK_ONLY|ATOMIC (virsh snapshot-create-as NAME --disk-only --atomic)";
            case SnapshotKind.DiskOnlyFrozen:
                await snapshots.CreateDiskOnlyAsync(name, [new DiskSnapshotSpec(disk, overlay!)], quiesce: true, cancellationToken: cancellationToken).ConfigureAwait(false);
                return "DISK_ONLY|ATOMIC|QUIESCE (--disk-only --atomic --quiesce: fsfreeze through the agent)";
            default:
                var live = kind == SnapshotKind.WithMemoryLive;
                await snapshots.CreateMemoryAsync(name, memory!, [new DiskSnapshotSpec(disk, overlay!)], live, cancellationToken).ConfigureAwait(false);
                return live ? "ATOMIC|LIVE with <memory snapshot='external'> (--memspec ... --diskspec ... --live)" : "ATOMIC with <memory snapshot='external'> (--memspec ... --diskspec ...)";
        }
    }

    /// <summary>
    /// libvirt's revert (<c>virDomainRevertToSnapshot</c>, running): its "cannot" (<see cref="LibvirtException.IsUnsupported"/>)
    /// is a <see cref="RevertRefusedException"/>; any other error is a failed revert and passes as it is.
    /// </summary>
    private async Task LibvirtRevertAsync(string name, bool askLibvirtForExternal, CancellationToken cancellationToken)
    {
        try
        {
            await guest.Domain.Snapshots.RevertAsync(name, running: true, askLibvirtForExternal, cancellationToken).ConfigureAwait(false);
        }
        catch (LibvirtException e) when (e.IsUnsupported)
        {
            throw new RevertRefusedException(e.Message, e);
        }
    }

    public async Task<RevertDone?> RevertAsync(string disk, SnapshotTaken snapshot, Func<string, string, string> newFile, CancellationToken cancellationToken = default)
    {
        switch (snapshot.Kind)
        {
            case SnapshotKind.Internal:
                await LibvirtRevertAsync(snapshot.Name, askLibvirtForExternal: false, cancellationToken).ConfigureAwait(false);
                guest.Agent.GuestRewound();
                // libvirt reconnects to the agent's channel after the revert; until then commands fail "not connected".
                await guest.Domain.WaitForAgentAsync(TimeSpan.FromMinutes(2), cancellationToken).ConfigureAwait(false);
                return new RevertDone(RevertMethod.LibvirtRevert, "virDomainRevertToSnapshot (virsh snapshot-revert)");
            case SnapshotKind.WithMemory or SnapshotKind.WithMemoryLive:
                // libvirt's own answer: before 9.7 it says it cannot (a refusal).
                await LibvirtRevertAsync(snapshot.Name, askLibvirtForExternal: true, cancellationToken).ConfigureAwait(false);
                guest.Agent.GuestRewound();
                return new RevertDone(RevertMethod.LibvirtRevert, "virDomainRevertToSnapshot (virsh snapshot-revert) of the external snapshot");
            default:
                if (guest.Capabilities.HasFlag(LabCapabilities.BootAgain))
                {
                    return null;
                }
                var overlay = newFile($"{snapshot.Name}-revert", $"{snapshot.Name}-revert.qcow2");
                await guest.Domain.Snapshots.RevertExternalAsync(disk, snapshot.FrozenLayer!, overlay, cancellationToken: cancellationToken).ConfigureAwait(false);
                return new RevertDone(RevertMethod.ColdBootOnFrozenLayer, "the lab's external revert on your domain: destroyed, a new overlay on the frozen layer, started on it");
        }
    }
}
