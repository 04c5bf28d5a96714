using LabKernel.Block;
using LabKernel.GuestAgent;
using LabKernel.Guests;
using LabKernel.Snapshots;

namespace LabKernel.Backends;

/// <summary>The embedded guest on QEMU directly (<see cref="EmbeddedGuest"/>): root disk <c>disk0</c>, QMP block layer.</summary>
public sealed class QemuLabGuest : ILabGuest
{
    private EmbeddedGuest _guest;
    private readonly EmbeddedGuestOptions _options;
    private bool _stopped;

    private QemuLabGuest(EmbeddedGuest guest, EmbeddedGuestOptions options)
    {
        _guest = guest;
        // Later starts (boot again, restore) run on other disks: never "fresh", so never over a saved state's layer.
        _options = options with { RootChainFresh = false };
        DataDisks = [.. options.ExtraDrives.Select(d => d.NodeName)];
    }

    internal static async Task<QemuLabGuest> StartAsync(LabGuestOptions options, CancellationToken cancellationToken)
    {
        var image = await GuestImageBuilder.EnsureAsync(progress: options.BuildProgress, cancellationToken: cancellationToken).ConfigureAwait(false);
        var top = await LabGuests.CreateChainAsync(LabKernel.Host.LocalHost.Instance, image.BaseImage, options.Overlays, cancellationToken).ConfigureAwait(false);
        var embedded = new EmbeddedGuestOptions
        {
            RootDisk = top,
            WorkFolder = options.WorkFolder,
            Name = options.Name,
            MemoryMiB = options.MemoryMiB,
            AgentTimeout = options.AgentTimeout,
            ExtraDrives = [.. options.DataDisks.Select((file, i) => new Machines.DriveSpec(Path.GetFullPath(file), $"disk{i + 1}"))],
            RootChainFresh = options.Overlays.Count > 0,
            Time = options.Time,
        };
        var guest = await EmbeddedGuest.StartAsync(embedded, cancellationToken).ConfigureAwait(false);
        return new QemuLabGuest(guest, embedded);
    }

    /// <summary>The QEMU process, for what only the QEMU backend offers (QMP, HMP, NBD exports).</summary>
    public Machines.QemuMachine Machine => _guest.Machine;

    public GuestBackend Backend => GuestBackend.Qemu;

    public Host.ILabHost Host => LabKernel.Host.LocalHost.Instance;
    public string Name => Machine.Options.Name;
    public string Disk => "disk0";
    public string BaseImage => _guest.Image.BaseImage;
    public TimeSpan? BootToAgent => Machine.BootToAgent;
    public IGuestAgent Agent => Machine.Agent;
    public ILabBlock Block => Machine.Block();
    public IGuestSnapshotMaker Snapshots => new QemuSnapshotMaker(this);
    public IReadOnlyList<string> DataDisks { get; }

    /// <summary>The data disks in the guest: virtio disks after the root disk, <c>/dev/vdb</c>, ...</summary>
    public IReadOnlyList<string> DataDiskDevices => [.. DataDisks.Select((_, i) => VirtioTargets.Device(VirtioTargets.DataDisk(i)))];

    public LabCapabilities Capabilities =>
        LabCapabilities.BootCopies | LabCapabilities.BootAgain | LabCapabilities.RestoreMemory | (DataDisks.Count > 0 ? LabCapabilities.DataDisks : 0);

    public string Description =>
        $"the embedded guest on QEMU directly ({Machine.Accelerator.Name}: {Machine.Accelerator.Reason}), agent up {BootToAgent?.TotalSeconds:0.0} s after start ({_guest.Start})";

    /// <summary>How the guest was last started: booted, or restored from a saved state (warm), and why.</summary>
    public GuestStart Start => _guest.Start;

    public int? QemuProcessId => Machine.ProcessId;

    public DomainHandBack? HandBack => null;

    public DomainTakeOver? TakeOver => null;

    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        _stopped = true;
        await _guest.DisposeAsync().ConfigureAwait(false);
    }

    public Task<TimeSpan> RebootAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        GuestReboot.RunAsync(Machine.Agent, () => Machine.Agent.ShutdownAsync("reboot", cancellationToken),
            left => Machine.WaitForAgentAsync(left, cancellationToken), timeout, cancellationToken);

    public Task<TimeSpan> SwapDataDiskAsync(string disk, string image, CancellationToken cancellationToken = default) =>
        throw new LabUsageException("the embedded guest on QEMU boots again on other images (BootAgainAsync); only the lab's data disks of your own libvirt domain are swapped live");

    public async Task<TimeSpan> BootAgainAsync(IReadOnlyDictionary<string, string>? diskImages = null, CancellationToken cancellationToken = default)
    {
        var (known, images) = LabGuests.CheckBootAgain(this, diskImages);
        // The chains as they are now (a live snapshot moves a disk onto a new top), then a clean power-off.
        var tops = new Dictionary<string, string>();
        if (!_stopped)
        {
            foreach (var name in known)
            {
                tops[name] = (await Machine.Block().QueryChainAsync(name, cancellationToken).ConfigureAwait(false)).Active.Filename;
            }
            await StopAsync(cancellationToken).ConfigureAwait(false);
        }
        string TopOf(string name, string atStart) =>
            images.TryGetValue(name, out var image) ? Path.GetFullPath(image) : tops.GetValueOrDefault(name, atStart);
        var next = _options with
        {
            RootDisk = TopOf(Disk, _guest.RootDisk),
            ExtraDrives = [.. _options.ExtraDrives.Select(d => d with { File = TopOf(d.NodeName, d.File) })],
        };
        _guest = await EmbeddedGuest.StartAsync(next, cancellationToken).ConfigureAwait(false);
        _stopped = false;
        return Machine.BootToAgent ?? TimeSpan.Zero;
    }

    public async Task<TimeSpan> RestoreAsync(IReadOnlyDictionary<string, string> diskImages, string memoryState, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(diskImages);
        var (known, images) = LabGuests.CheckBootAgain(this, diskImages);
        // A disk left on its current top would not be at the state's instant: QEMU would load a guest whose page
        // cache and filesystem disagree with its disk, a corrupt guest.
        var missing = known.Where(d => !images.ContainsKey(d)).ToList();
        if (missing.Count > 0)
        {
            throw new LabUsageException($"a memory state restores only with every disk at its instant: give an image for {string.Join(", ", missing)} too");
        }
        if (!_stopped)
        {
            await StopAsync(cancellationToken).ConfigureAwait(false);
        }
        var next = _options with
        {
            RootDisk = Path.GetFullPath(images[Disk]),
            ExtraDrives = [.. _options.ExtraDrives.Select(d => d with { File = Path.GetFullPath(images[d.NodeName]) })],
            IncomingState = Path.GetFullPath(memoryState),
        };
        _guest = await EmbeddedGuest.StartAsync(next, cancellationToken).ConfigureAwait(false);
        _stopped = false;
        return Machine.BootToAgent ?? TimeSpan.Zero;
    }

    public Task<BlockLayer> OpenMonitorAsync(CancellationToken cancellationToken = default) => Task.FromResult(Machine.Block());

    public async ValueTask DisposeAsync()
    {
        if (!_stopped)
        {
            await StopAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>Each kind of snapshot through QMP on the guest's own QEMU; reverts of external kinds are the lab's.</summary>
internal sealed class QemuSnapshotMaker(ILabGuest guest) : IGuestSnapshotMaker
{
    public bool Supports(SnapshotKind kind) => kind != SnapshotKind.WithMemoryLive;

    public async Task<string> TakeAsync(string disk, SnapshotKind kind, string name, string? overlay, string? memory, CancellationToken cancellationToken = default)
    {
        switch (kind)
        {
            case SnapshotKind.Internal:
                var block = await guest.OpenMonitorAsync(cancellationToken).ConfigureAwait(false);
                await block.SaveInternalSnapshotAsync(name, [disk], disk, cancellationToken: cancellationToken).ConfigureAwait(false);
                return "QMP snapshot-save job (vmstate and disk inside the active qcow2, as HMP savevm)";
            case SnapshotKind.DiskOnly:
                await guest.Block.SnapshotAsync(disk, overlay!, cancellationToken).ConfigureAwait(false);
                return "QMP transaction of blockdev-snapshot-sync";
            case SnapshotKind.DiskOnlyFrozen:
                await guest.Agent.FreezeAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    await guest.Block.SnapshotAsync(disk, overlay!, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    await guest.Agent.ThawAsync(CancellationToken.None).ConfigureAwait(false);
                }
                return "guest-fsfreeze-freeze, QMP blockdev-snapshot-sync, guest-fsfreeze-thaw";
            case SnapshotKind.WithMemory:
                var monitor = await guest.OpenMonitorAsync(cancellationToken).ConfigureAwait(false);
                await monitor.CheckpointAsync(memory!, new Dictionary<string, string> { [disk] = overlay! }, cancellationToken: cancellationToken).ConfigureAwait(false);
                return "QMP stop, blockdev-snapshot-sync, migrate to a file, cont";
            default:
                throw new LabUsageException($"the qemu backend has no {kind} snapshot");
        }
    }

    public async Task<RevertDone?> RevertAsync(string disk, SnapshotTaken snapshot, Func<string, string, string> newFile, CancellationToken cancellationToken = default)
    {
        if (snapshot.Kind != SnapshotKind.Internal)
        {
            return null;
        }
        var block = await guest.OpenMonitorAsync(cancellationToken).ConfigureAwait(false);
        await block.LoadInternalSnapshotAsync(snapshot.Name, [disk], disk, cancellationToken: cancellationToken).ConfigureAwait(false);
        guest.Agent.GuestRewound();
        return new RevertDone(RevertMethod.SnapshotLoad, "QMP snapshot-load job (as HMP loadvm)");
    }
}
